"""The product catalogue (TOML): names, live values (price, stock), selling points, FAQ, idle lines.

Coupons and free gifts are listed here too: the output guard lets the host promise a discount, a
coupon code or a free item only when the catalogue (as it is live) says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from streamer.config import ConfigError, read_toml_model


class _FAQ(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keywords: list[str] = Field(min_length=1)
    answer: str


class _ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    price: float = Field(ge=0)
    stock: int = Field(ge=0, default=0)
    link: str = ""
    selling_points: list[str] = []
    idle: list[str] = []
    faq: list[_FAQ] = []
    gifts: list[str] = []
    """What comes free with the product (a sample pack, a capsule adapter)."""


class _CouponIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1)
    off: float = Field(ge=0, default=0)
    """Money off, in the catalogue's currency."""
    percent: float = Field(ge=0, lt=100, default=0)
    product: str = ""
    """The product id it applies to; empty: every product."""


class _CatalogueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency_word: str = "dollars"
    product: list[_ProductIn] = Field(min_length=1)
    coupon: list[_CouponIn] = []


@dataclass
class Product:
    id: str
    name: str
    price: float
    stock: int
    link: str
    selling_points: list[str]
    idle: list[str]
    faq: list[tuple[tuple[str, ...], str]]
    gifts: list[str] = field(default_factory=list)

    def values(self, currency: str, host: str) -> dict[str, str]:
        price = f"{self.price:g}"
        return {"name": self.name, "price": price, "stock": str(self.stock), "currency": currency, "host": host,
                "link": self.link}


@dataclass
class Coupon:
    code: str
    off: float = 0.0
    percent: float = 0.0
    product: str = ""


@dataclass
class Catalogue:
    products: list[Product]
    currency_word: str
    current: int = 0
    coupons: list[Coupon] = field(default_factory=list)

    @property
    def product(self) -> Product:
        return self.products[self.current]

    def select(self, product_id: str) -> Product:
        ids = [p.id for p in self.products]
        if product_id not in ids:
            raise KeyError(f"no product {product_id!r}; known: {', '.join(ids)}")
        self.current = ids.index(product_id)
        return self.product


def load_catalogue(path: Path) -> Catalogue:
    cat = read_toml_model(path, _CatalogueIn, "product catalogue")
    products = [
        Product(p.id, p.name, p.price, p.stock, p.link, p.selling_points, p.idle,
                [(tuple(k.lower() for k in f.keywords), f.answer) for f in p.faq], list(p.gifts))
        for p in cat.product
    ]
    ids = {p.id for p in cat.product}
    for i, c in enumerate(cat.coupon):
        if c.product and c.product not in ids:
            raise ConfigError(f"{path}: coupon.{i}.product: no product {c.product!r}; known: {', '.join(sorted(ids))}")
    coupons = [Coupon(c.code, c.off, c.percent, c.product) for c in cat.coupon]
    return Catalogue(products, cat.currency_word, coupons=coupons)
