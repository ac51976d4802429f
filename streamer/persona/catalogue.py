"""The product catalogue (TOML): names, live values (price, stock), selling points, FAQ, idle lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from streamer.config import read_toml_model


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


class _CatalogueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency_word: str = "dollars"
    product: list[_ProductIn] = Field(min_length=1)


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

    def values(self, currency: str, host: str) -> dict[str, str]:
        price = f"{self.price:g}"
        return {"name": self.name, "price": price, "stock": str(self.stock), "currency": currency, "host": host,
                "link": self.link}


@dataclass
class Catalogue:
    products: list[Product]
    currency_word: str
    current: int = 0

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
                [(tuple(k.lower() for k in f.keywords), f.answer) for f in p.faq])
        for p in cat.product
    ]
    return Catalogue(products, cat.currency_word)
