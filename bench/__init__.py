"""Benchmarks of our Store SCP against dcmtk storescp, Orthanc and pynetdicom's storescp."""
