"""The knobs of the example systems' simulators (seeds 001-004), part of SandboxConfig."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CURRENCIES", "ExamplesConfig"]

#: ISO code -> name, as the Frankfurter API lists them.
CURRENCIES: dict[str, str] = {
    "AUD": "Australian Dollar",
    "BGN": "Bulgarian Lev",
    "BRL": "Brazilian Real",
    "CAD": "Canadian Dollar",
    "CHF": "Swiss Franc",
    "CNY": "Chinese Renminbi Yuan",
    "CZK": "Czech Koruna",
    "DKK": "Danish Krone",
    "EUR": "Euro",
    "GBP": "British Pound",
    "HKD": "Hong Kong Dollar",
    "HUF": "Hungarian Forint",
    "IDR": "Indonesian Rupiah",
    "ILS": "Israeli New Sheqel",
    "INR": "Indian Rupee",
    "ISK": "Icelandic Króna",
    "JPY": "Japanese Yen",
    "KRW": "South Korean Won",
    "MXN": "Mexican Peso",
    "MYR": "Malaysian Ringgit",
    "NOK": "Norwegian Krone",
    "NZD": "New Zealand Dollar",
    "PHP": "Philippine Peso",
    "PLN": "Polish Złoty",
    "RON": "Romanian Leu",
    "SEK": "Swedish Krona",
    "SGD": "Singapore Dollar",
    "THB": "Thai Baht",
    "TRY": "Turkish Lira",
    "USD": "United States Dollar",
    "ZAR": "South African Rand",
}


@dataclass
class ExamplesConfig:
    #: Currencies the Frankfurter simulator lists (a test removes one to see a deletion).
    currencies: dict[str, str] = field(default_factory=lambda: dict(CURRENCIES))
    #: Products in the catalogue on day 1; each day some change and a few are added.
    products: int = 300
    products_page_size: int = 50
    products_daily_change: float = 0.05
    #: The jokes API's key.
    jokes_key: str = "sandbox-jokes-key"
    #: Rows of each month's yellow-taxi file.
    taxi_rows: int = 10_000
    #: Serve the months' CSV files too, as a local mirror of the TLC's old CSV files would; the
    #: TLC's bucket publishes Parquet only (since 2022) and answers 403 for a CSV file.
    taxi_csv: bool = False
    #: Rows of the Sage transactions export, and the share of them that are malformed.
    sage_rows: int = 400
    sage_bad_rate: float = 0.02
    #: The transactions export's delimiter (the real export's is the comma).
    sage_delimiter: str = ","
