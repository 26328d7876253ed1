"""The product catalogue: `product.created` for every product first, then `product.updated`.

Products are repriced, moved to another category or switched on and off; their current state is
what later order lines are priced from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grid_sim.delivery import ON_TIME, Delivery
from grid_sim.producer import Event, Producer, money

# category: (min price, max price in cents, product nouns)
CATEGORIES: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "Beverages": (199, 2499, ("Cold Brew", "Green Tea", "Sparkling Water", "Café Blend")),
    "Bakery": (149, 1299, ("Sourdough", "Croissant", "Bagels", "Rye Loaf", "Brioche")),
    "Dairy": (129, 1899, ("Crème Fraîche", "Greek Yogurt", "Aged Cheddar", "Oat Milk")),
    "Produce": (99, 999, ("Avocados", "Jalapeño Peppers", "Blueberries", "Fuji Apples")),
    "Pantry": (199, 3499, ("Olive Oil", "Basmati Rice", "Pasta", "Peanut Butter", "Honey")),
    "Household": (249, 4999, ("Dish Soap", "Paper Towels", "Laundry Pods", "Trash Bags")),
    "Personal Care": (299, 5999, ("Shampoo", "Toothpaste", "Sunscreen", "Hand Cream")),
    "Electronics": (999, 19999, ("USB-C Cable", "Earbuds", "Power Bank", "Smart Plug")),
}
_CATEGORY_NAMES = tuple(CATEGORIES)
_ADJECTIVES = ("Organic", "Classic", "Premium", "Everyday", "Family Size", "Mini", "Artisan", "Eco")


@dataclass(slots=True)
class Product:
    product_id: str
    name: str
    category: str
    price: int = 0  # in 1/10000 of a dollar: exact, and room for sub-cent bulk prices
    active: bool = True
    price_json: str = ""  # the price as a JSON string, '"12.50"'
    number_json: str = ""  # as a JSON number, '12.5'; empty unless a whole number of cents

    def reprice(self, price: int) -> None:
        self.price = price
        text = money(price)
        self.price_json = f'"{text}"'
        # A float's shortest repr of a two-decimal amount is exactly that amount, so a JSON
        # number rendered this way never carries more digits than the price has.
        self.number_json = repr(float(text)) if price % 100 == 0 else ""


class Catalog:
    """The shop's products and the events that announce and change them."""

    def __init__(self, producer: Producer, delivery: Delivery) -> None:
        self.producer = producer
        self.delivery = delivery
        self.products: list[Product] = []

    def payload(self, product: Product) -> dict[str, Any]:
        producer, profile = self.producer, self.producer.profile
        use_number = product.number_json and producer.rnd() < profile.price_as_number_share
        payload: dict[str, Any] = {
            "product_id": product.product_id,
            "name": product.name,
            "category": product.category,
            "unit_price": float(product.number_json) if use_number else money(product.price),
        }
        # Defaults (`USD`, active) are sometimes left implicit, as the contract allows.
        if producer.rnd() < profile.explicit_currency_share:
            payload["currency"] = "USD"
        if not product.active or producer.rnd() < profile.explicit_active_share:
            payload["active"] = product.active
        return payload

    def create(self, n_events: int) -> None:
        """Announce the catalogue, one product every few seconds from the start of the clock."""
        producer, profile = self.producer, self.producer.profile
        pick, rnd = producer.pick, producer.rnd
        size = max(
            profile.min_products, min(profile.max_products, n_events // profile.events_per_product)
        )
        at = producer.clock
        for i in range(1, size + 1):
            category = pick(_CATEGORY_NAMES)
            low, high, nouns = CATEGORIES[category]
            name = f"{pick(_ADJECTIVES)} {pick(nouns)}"
            product = Product(f"P-{i:05d}", name, category)
            cents = low + int(rnd() * (high - low))
            cents = max(cents // 100 * 100 + pick(profile.price_endings), 49)
            sub_cent = int(rnd() * 99) + 1 if rnd() < profile.sub_cent_price_share else 0
            product.reprice(cents * 100 + sub_cent)
            self.products.append(product)
            payload = producer.dumps(self.payload(product))
            created = producer.envelope("product.created", at, "grid-catalog", payload)
            self.delivery.schedule(at, created, None, ON_TIME)
            at += profile.product_gap_min_ms + int(rnd() * profile.product_gap_span_ms)
        producer.clock = at

    def update(self) -> Event:
        producer, profile = self.producer, self.producer.profile
        rnd = producer.rnd
        product = producer.pick(self.products)
        r = rnd()
        if r < profile.reprice_below:
            # Size before direction: the order of draws is part of what a seed reproduces.
            change = profile.reprice_min + rnd() * profile.reprice_span
            factor = 1 + change * (1 if rnd() < profile.price_rise_share else -1)
            # Repriced to whole dollars and 99 cents, as the catalogue team does.
            product.reprice((int(product.price * factor) // 10_000 * 100 + 99) * 100)
        elif r < profile.recategorize_below:
            product.category = producer.pick(_CATEGORY_NAMES)
        else:
            product.active = not product.active
        payload = producer.dumps(self.payload(product))
        return producer.envelope("product.updated", producer.clock, "grid-catalog", payload)
