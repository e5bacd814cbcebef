"""Fixed terms and entity word lists of bank-customer calls (data, no logic).

Why a separate module: these lists decide which domain words the corpus teaches Whisper
(Zelle, APR, HELOC, merchants, cities...) and are what a reviewer or a new domain edits;
keeping them apart from the templates (``banking_templates``) and the slot fillers that
draw from them (``fillers``) keeps each file readable. ``TERMS`` maps a fixed term to its
written form (what Whisper emits) and its spoken form (what the TTS reads).
"""

from __future__ import annotations

__all__ = [
    "TERMS",
    "P2P",
    "WALLETS",
    "NETWORKS",
    "CARD_KINDS",
    "MERCHANTS",
    "MERCHANT_SPOKEN",
    "CITIES",
    "ABROAD_CITIES",
    "COUNTRIES",
    "PEOPLE",
    "NAMES",
    "BILLS",
    "BILL_SPOKEN",
    "ACCOUNTS",
    "STREETS",
    "APP_ERRORS",
    "DEVICES",
    "BUSINESSES",
    "WEEKDAYS",
    "PHRASE_TERMS",
    "OPENERS",
    "CLOSERS",
]

# --- fixed terms: written form Whisper emits -> spoken form the TTS reads -------------------
TERMS: dict[str, tuple[str, str]] = {
    "APR": ("APR", "A P R"),
    "ATM": ("ATM", "A T M"),
    "ACH": ("ACH", "A C H"),
    "IBAN": ("IBAN", "eye ban"),
    "SWIFT": ("SWIFT", "swift"),
    "PIN": ("PIN", "pin"),
    "HELOC": ("HELOC", "hee lock"),
    "CD": ("CD", "C D"),
    "FDIC": ("FDIC", "F D I C"),
    "Zelle": ("Zelle", "zell"),
    "SBA": ("SBA", "S B A"),
    "EIN": ("EIN", "E I N"),
    "LLC": ("LLC", "L L C"),
    "CVV": ("CVV", "C V V"),
}

P2P = [("Zelle", "zell"), ("Venmo", "venmo"), ("PayPal", "PayPal"), ("Cash App", "cash app")]
WALLETS = [("Apple Pay", "Apple Pay"), ("Google Pay", "Google Pay"), ("Samsung Pay", "Samsung Pay")]
NETWORKS = [
    ("Visa", "Visa"),
    ("Mastercard", "Mastercard"),
    ("American Express", "American Express"),
    ("Discover", "Discover"),
]
CARD_KINDS = [
    "debit card",
    "credit card",
    "rewards credit card",
    "platinum card",
    "secured credit card",
    "business debit card",
    "travel card",
    "cash back card",
]
MERCHANTS = [
    "Amazon",
    "Walmart",
    "Target",
    "Costco",
    "Starbucks",
    "Uber",
    "Netflix",
    "Spotify",
    "Home Depot",
    "Best Buy",
    "Whole Foods",
    "Delta",
    "Shell",
    "Chevron",
    "McDonald's",
    "CVS",
    "Walgreens",
    "Airbnb",
    "Expedia",
    "DoorDash",
    "Trader Joe's",
    "Lyft",
    "Apple",
    "eBay",
    "Kroger",
    "Safeway",
    "IKEA",
    "Marriott",
]
MERCHANT_SPOKEN = {"CVS": "C V S", "IKEA": "ikea", "eBay": "e bay"}
CITIES = [
    "Chicago",
    "Houston",
    "Phoenix",
    "Denver",
    "Seattle",
    "Boston",
    "Miami",
    "Atlanta",
    "Dallas",
    "San Diego",
    "Portland",
    "Nashville",
    "Austin",
    "Philadelphia",
    "Detroit",
    "Minneapolis",
    "Orlando",
    "Las Vegas",
    "Charlotte",
    "Baltimore",
    "Sacramento",
]
ABROAD_CITIES = [
    "London",
    "Paris",
    "Toronto",
    "Mexico City",
    "Madrid",
    "Rome",
    "Tokyo",
    "Berlin",
    "Dublin",
    "Lisbon",
    "Cancun",
    "Amsterdam",
    "Vancouver",
    "Barcelona",
    "Sydney",
    "Seoul",
]
COUNTRIES = [
    "Mexico",
    "Canada",
    "France",
    "Italy",
    "Spain",
    "Japan",
    "the UK",
    "Germany",
    "Portugal",
    "Ireland",
    "Greece",
    "Brazil",
    "India",
    "Australia",
    "the Netherlands",
]
PEOPLE = [
    "my sister",
    "my brother",
    "my landlord",
    "my mom",
    "my dad",
    "my son",
    "my daughter",
    "a friend",
    "my roommate",
    "my contractor",
    "my wife",
    "my husband",
    "my cousin",
]
NAMES = [
    "John",
    "Maria",
    "David",
    "Sarah",
    "Michael",
    "Jennifer",
    "Carlos",
    "Emily",
    "James",
    "Linda",
    "Robert",
    "Jessica",
    "Daniel",
    "Ashley",
    "Kevin",
    "Angela",
]
BILLS = [
    "electric bill",
    "water bill",
    "phone bill",
    "internet bill",
    "gas bill",
    "credit card bill",
    "car insurance",
    "rent",
    "mortgage payment",
    "student loan payment",
    "Comcast bill",
    "Verizon bill",
    "AT&T bill",
    "car payment",
]
BILL_SPOKEN = {"AT&T bill": "A T and T bill"}
ACCOUNTS = ["checking account", "savings account", "money market account", "business checking account"]
STREETS = [
    "Main Street",
    "Oak Avenue",
    "Maple Drive",
    "Elm Street",
    "Park Avenue",
    "Cedar Lane",
    "Washington Boulevard",
    "Lake Road",
    "Pine Street",
    "Sunset Boulevard",
]
APP_ERRORS = [
    "keeps crashing",
    "won't let me log in",
    "shows an error code",
    "is stuck on the loading screen",
    "says my session expired",
    "won't load my statements",
    "logs me out every time",
    "doesn't show my balance",
    "won't accept my password",
    "froze during a transfer",
]
DEVICES = ["iPhone", "Android phone", "iPad", "Samsung phone", "laptop"]
BUSINESSES = [
    "bakery",
    "coffee shop",
    "landscaping company",
    "small restaurant",
    "hair salon",
    "consulting firm",
    "food truck",
    "auto repair shop",
    "cleaning business",
    "daycare",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# multi-word banking terms that appear inside templates rather than as slots
PHRASE_TERMS: tuple[str, ...] = (
    "wire transfer", "direct deposit", "direct debit", "routing number", "overdraft",
    "autopay", "joint account", "business loan", "line of credit", "travel notice",
    "foreign transaction fees", "checking account", "savings account", "money market account",
    "Social Security number", "withdrawal limit", "cash deposit",
)  # fmt: skip

# disfluency-free by design: no "um"/"uh" openers (Whisper drops them from its output)
OPENERS = [
    "",
    "",
    "",
    "Hi, ",
    "Hello, ",
    "Hi there, ",
    "Good morning, ",
    "Yes, hi, ",
    "Hey, ",
    "Good afternoon, ",
    "Okay, ",
    "So, ",
]
CLOSERS = ["", "", "", " Thanks.", " Thank you.", " Thanks for your help.", " I appreciate it."]
