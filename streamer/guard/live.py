"""What the host may promise right now: values read from the live catalogue at check time.

The control API changes a product's price and stock, and switches the current product, while the
show runs; the guard holds the catalogue object itself and reads it on every check, so a sentence
is judged against the price the shop charges at that moment, not the one it was started with.

Allowed are: every product's price, its price after each coupon that applies to it, and each
coupon's money off (one set: a number said with a currency); every product's stock; each coupon's
percentage and its Chinese discount tenths (20 % off is 八折); coupon codes; and the free gifts a
product lists. Brands: the shop's own (``[safety] brands``), every product's name, and phrases the
operator allowed for this show. Domains: ``[safety] domains`` and the domains of the catalogue's
product links, with their subdomains.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from streamer.guard.text import normalise, parse_number
from streamer.persona.catalogue import Catalogue, Product

_TOLERANCE = 0.005


@dataclass
class Allowances:
    """What the show allows besides the catalogue (startup settings plus operator allowances)."""

    brands: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)


class LiveValues:
    """The catalogue's values at one moment, computed when a sentence needs them."""

    def __init__(self, catalogue: Catalogue | None, allowances: Allowances, extra_brands: Iterable[str] = ()) -> None:
        self.catalogue = catalogue
        self.money: set[float] = set()
        self.stock: set[float] = set()
        self.percents: set[float] = set()
        self.codes: set[str] = set()
        self.gifts: list[str] = []
        names: list[str] = []
        domains = [d.lower().strip(".") for d in allowances.domains if d.strip()]
        if catalogue is not None:
            for p in catalogue.products:
                self.money.add(round(p.price, 2))
                self.stock.add(float(p.stock))
                self.gifts.extend(normalise(g) for g in p.gifts if g.strip())
                names.append(normalise(p.name))
                host = _link_host(p.link)
                if host:
                    domains.append(host)
            for c in catalogue.coupons:
                self.codes.add(c.code.lower())
                if c.off:
                    self.money.add(round(c.off, 2))
                if c.percent:
                    self.percents.add(round(c.percent, 2))
                for p in catalogue.products:
                    if c.product and c.product != p.id:
                        continue
                    if c.off:
                        self.money.add(round(max(0.0, p.price - c.off), 2))
                    if c.percent:
                        self.money.add(round(p.price * (1 - c.percent / 100), 2))
        self.has_coupons = bool(self.codes)
        self.names = names
        self.brands = [normalise(b) for b in [*allowances.brands, *extra_brands] if b.strip()]
        self.domains = domains

    def allowed(self, group: str, value: str, sentence: str) -> bool:
        """Whether a rule's named group holds a value the show allows (``sentence``: normalised text)."""
        v = value.strip()
        if group in ("price", "money"):
            return _in(parse_number(v), self.money)
        if group == "stock":
            return _in(parse_number(v), self.stock)
        if group == "percent":
            return _in(parse_number(v), self.percents)
        if group == "zhe":
            n = parse_number(v)
            if n is None:
                return False
            tenths = n / 10 if n >= 10 else n
            return any(abs((100 - p) / 10 - tenths) <= _TOLERANCE for p in self.percents)
        if group == "code":
            return v.lower() in self.codes
        if group == "coupon":
            return self.has_coupons
        if group == "gift":
            return any(g and g in sentence for g in self.gifts)
        if group == "brand":
            b = normalise(v)
            return bool(b) and any(a in b or b in a for a in (*self.brands, *self.names) if a)
        if group == "domain":
            d = v.lower().strip(".")
            return any(d == a or d.endswith("." + a) for a in self.domains)
        return False

    def product_in(self, sentence: str) -> Product | None:
        """The product a sentence names (its full name), else the current one."""
        if self.catalogue is None:
            return None
        for p, name in zip(self.catalogue.products, self.names, strict=True):
            if name and name in sentence:
                return p
        return self.catalogue.product

    def live_value(self, group: str, sentence: str) -> str | None:
        """The value to put in place of a wrong price or stock figure."""
        product = self.product_in(sentence)
        if product is None:
            return None
        if group in ("price", "money"):
            return f"{product.price:g}"
        if group == "stock":
            return str(product.stock)
        return None


def _in(n: float | None, values: set[float]) -> bool:
    return n is not None and any(abs(n - v) <= _TOLERANCE for v in values)


def _link_host(link: str) -> str:
    m = re.match(r"^(?:[a-z]+://)?([^/\s:?#]+)", link.strip().lower())
    host = m.group(1) if m else ""
    return host.removeprefix("www.") if "." in host else ""
