"""A baresip phone registered to a running node, in one call."""

from __future__ import annotations

from tests.peers.baresip import BaresipPhone
from tests.peers.fixtures import BaresipFactory
from tests.support.server import VaxlaProcess


async def registered_phone(
    node: VaxlaProcess,
    factory: BaresipFactory,
    ext: str,
    password: str | None = None,
    **kwargs: object,
) -> BaresipPhone:
    """Create extension ``ext`` on ``node`` and register a new baresip phone as it."""
    password = password or f"pw-{ext}"
    node.add_extension(ext, password)
    phone = await factory(f"p{ext}", **kwargs)
    await phone.register(ext, password, node.sip_addr)
    return phone
