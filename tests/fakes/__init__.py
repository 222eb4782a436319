"""Test fakes for services with no local server. Never imported by the product."""
