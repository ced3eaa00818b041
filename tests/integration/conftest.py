from tests.peers.fixtures import baresip_factory, sipp_factory  # noqa: F401
