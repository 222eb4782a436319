"""Query/Retrieve from HealthImaging (issue 17): C-FIND answered from QIDO-RS searches (search.py)
with PS3.4 C.2.2.2 matching of what HealthImaging cannot filter (matching.py), C-MOVE and C-GET
fed by WADO-RS (service.py)."""
