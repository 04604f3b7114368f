"""Where a webhook may point: http(s) URLs only, to public addresses unless the
deployment admits more (`WAYBILL_WEBHOOK_ALLOWED_NETWORKS`; loopback in development).

Checked when a subscription is made or changed (its host resolved then) and again at
every delivery, against the addresses the connection will use: a name that resolved
to a public address when it was registered and to an internal one later (DNS
rebinding) is refused then."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL_LENGTH = 2000
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class Refused(ValueError):
    """This URL or address may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # a name, or an address without brackets
    port: int

    @property
    def address(self) -> IPAddress | None:
        """The host as an address, when the URL names one."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_url(url: str) -> Target:
    """The URL's parts, or Refused: http or https, a host, no user or password (they
    would show in every listing), at most 2,000 characters."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise Refused("the URL may not hold spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise Refused(f"only http and https URLs receive webhooks, not {parts.scheme or 'this'!r}")
    if not parts.hostname:
        raise Refused("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise Refused("the URL may not carry a user or password; the signature proves the sender")
    if parts.fragment:
        raise Refused("the URL may not have a fragment (#...)")
    return Target(
        url=url,
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
    )


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses, and the networks the deployment admits."""

    admitted: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, networks: Iterable[str], *, allow_loopback: bool) -> AddressPolicy:
        admitted = [ipaddress.ip_network(n, strict=False) for n in networks]
        return cls(tuple(admitted) + (LOOPBACK if allow_loopback else ()))

    def refusal(self, address: IPAddress) -> str | None:
        """What kind of address `address` is, when it may not receive webhooks ("a
        private address"); None when it may."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.admitted):
            return None
        for flag, what in (
            ("is_loopback", "a loopback"),
            ("is_link_local", "a link-local"),
            ("is_multicast", "a multicast"),
            ("is_unspecified", "an unspecified"),
            ("is_reserved", "a reserved"),
            ("is_private", "a private"),
        ):
            if getattr(address, flag):
                return f"{what} address"
        if not address.is_global:
            return "not a public address"
        return None

    def check(self, host: str, addresses: Iterable[IPAddress]) -> list[IPAddress]:
        """Every address `host` resolved to, or Refused when any of them is refused (one
        internal answer among public ones is enough to refuse)."""
        found = list(dict.fromkeys(addresses))
        if not found:
            raise Refused(f"{host} resolves to no address")
        for address in found:
            if (why := self.refusal(address)) is not None:
                named = host if host == str(address) else f"{host} (resolved to {address})"
                raise Refused(
                    f"{named} is refused: {why}; webhooks go to public addresses unless "
                    "the deployment admits the network (WAYBILL_WEBHOOK_ALLOWED_NETWORKS)"
                )
        return found


async def resolve(host: str, port: int, *, within: float) -> list[IPAddress]:
    """The addresses of `host` (itself, when it is one); Refused when it does not
    resolve within `within` seconds."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), within
        )
    except (OSError, TimeoutError) as exc:
        raise Refused(f"the host {host} does not resolve: {exc or 'timed out'}") from None
    except ValueError as exc:  # a name that cannot be looked up (IDNA, a NUL byte)
        raise Refused(f"the host {host!r} is not a valid name: {exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def vet(url: str, policy: AddressPolicy, *, within: float = 3.0) -> Target:
    """The URL's target if it may receive webhooks now; Refused (with why) if not."""
    target = parse_url(url)
    policy.check(target.host, await resolve(target.host, target.port, within=within))
    return target
