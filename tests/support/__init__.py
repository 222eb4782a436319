"""Test-only helpers: free ports, a moto server, processes under test. Never imported by the product."""
