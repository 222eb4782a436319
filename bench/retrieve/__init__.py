"""The retrieve benchmark (`python -m bench.retrieve`): a study moved (C-MOVE) or pulled (C-GET)
from our Query/Retrieve SCP over HealthImaging's DICOMweb stand-in, next to dcmtk's dcmqrscp
serving the same study from disk."""
