"""The storage layout below the store prefix, as config/contracts.json holds it (the SCP writes
it; tests/generator/test_contracts.py keeps these equal to the file)."""

INCOMING_PREFIX = "incoming/"  # incoming/{batchId}/{Study}/{Series}/{SOP}.dcm
OPEN_PREFIX = "open/"  # open/{batchId}.json, the open-batch marker
BATCHES_PREFIX = "batches/"  # batches/{batchId}.json, the manifest, written last
DIRECT_PREFIX = "direct/"  # direct/{Study}/{Series}/{SOP}.dcm: stored by StoreDICOM, in no batch
