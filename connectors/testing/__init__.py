"""Fake IdP servers (ASGI apps) for tests, benchmarks and `syncd demo`, over one seeded tenant."""
