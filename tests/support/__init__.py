"""Test-only helpers: ports, a moto server, processes under test. Never used by the product."""
