"""The fixed reference data every data set shares: places, devices, site pages, catalog, campaign templates.

Plain tables, no randomness (also currencies and prices, names, visit channels, and how often each
timestamp format is written): :mod:`pipelines.generate.world` draws the campaign tree of one random seed from them and
the simulation and stream modules look values up in them by index.
"""

from __future__ import annotations

import polars as pl

SITE = "https://www.framecraft.io"
META_PIXEL_IDS = ("1184375920337461", "2841093756120934")  # main site pixel, checkout-domain pixel
AD_ACCOUNT_CURRENCY = "USD"

CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "BRL")
FX_FROM_USD = (1.0, 0.93, 0.8, 1.37, 1.52, 5.0)  # list prices in other currencies, before charm rounding
# monthly plans (pro, business) in each currency, minor units
PLAN_PRICES = {
    "USD": (1499, 2999),
    "EUR": (1399, 2799),
    "GBP": (1199, 2399),
    "CAD": (1999, 3999),
    "AUD": (2199, 4499),
    "BRL": (4990, 9990),
}
PLANS = ("pro", "business")

# country: weight, currency, calling code, email domains (repeats weight them)
COUNTRIES: dict[str, tuple[float, str, str, str]] = {
    "US": (
        40,
        "USD",
        "1",
        "gmail.com gmail.com gmail.com yahoo.com outlook.com icloud.com hotmail.com aol.com",
    ),
    "GB": (
        11,
        "GBP",
        "44",
        "gmail.com gmail.com outlook.com hotmail.co.uk btinternet.com yahoo.co.uk icloud.com",
    ),
    "DE": (9, "EUR", "49", "gmail.com gmx.de gmx.de web.de t-online.de outlook.de"),
    "FR": (7, "EUR", "33", "gmail.com gmail.com orange.fr free.fr hotmail.fr laposte.net"),
    "CA": (7, "CAD", "1", "gmail.com gmail.com outlook.com yahoo.ca icloud.com"),
    "AU": (6, "AUD", "61", "gmail.com gmail.com outlook.com bigpond.com icloud.com"),
    "BR": (8, "BRL", "55", "gmail.com gmail.com gmail.com hotmail.com uol.com.br outlook.com"),
    "ES": (4, "EUR", "34", "gmail.com gmail.com hotmail.es yahoo.es outlook.es"),
    "NL": (4, "EUR", "31", "gmail.com gmail.com ziggo.nl outlook.com kpnmail.nl"),
    "IE": (4, "EUR", "353", "gmail.com gmail.com eircom.net outlook.com icloud.com"),
}
# country, city, weight in country, state name, state code, UTC offset (minutes, standard time),
# postcode kind, postcode prefixes ("|" = alternatives), phone area code, phone local prefix, local digits.
# Phone numbers use ranges reserved for fiction where countries have them (555-01xx, 020 7946 0xxx, ...).
CITIES: tuple[tuple[str, str, float, str | None, str | None, int, str, str, str, str, int], ...] = (
    ("US", "New York", 22, "New York", "NY", -300, "us", "100|101|112", "212", "55501", 7),
    ("US", "Los Angeles", 16, "California", "CA", -480, "us", "900|902", "213", "55501", 7),
    ("US", "San Francisco", 10, "California", "CA", -480, "us", "941", "415", "55501", 7),
    ("US", "Chicago", 10, "Illinois", "IL", -360, "us", "606", "312", "55501", 7),
    ("US", "Austin", 8, "Texas", "TX", -360, "us", "787", "512", "55501", 7),
    ("US", "Seattle", 8, "Washington", "WA", -480, "us", "981", "206", "55501", 7),
    ("US", "Miami", 8, "Florida", "FL", -300, "us", "331", "305", "55501", 7),
    ("US", "Boston", 7, "Massachusetts", "MA", -300, "us", "021", "617", "55501", 7),
    ("US", "Denver", 6, "Colorado", "CO", -420, "us", "802", "303", "55501", 7),
    ("US", "Atlanta", 5, "Georgia", "GA", -300, "us", "303", "404", "55501", 7),
    ("GB", "London", 55, None, None, 0, "uk", "SW1A|EC2A|N1|E14|W1D|SE1", "20", "79460", 8),
    ("GB", "Manchester", 15, None, None, 0, "uk", "M1|M4|M15", "161", "4960", 7),
    ("GB", "Birmingham", 12, None, None, 0, "uk", "B1|B5", "121", "4960", 7),
    ("GB", "Edinburgh", 10, None, None, 0, "uk", "EH1|EH3", "131", "4960", 7),
    ("GB", "Bristol", 8, None, None, 0, "uk", "BS1|BS8", "117", "4960", 7),
    ("DE", "Berlin", 35, None, None, 60, "d5", "101|103|107", "30", "23125", 8),
    ("DE", "Munich", 22, None, None, 60, "d5", "803|806", "89", "99998", 8),
    ("DE", "Hamburg", 20, None, None, 60, "d5", "200|203", "40", "66690", 8),
    ("DE", "Cologne", 13, None, None, 60, "d5", "506", "221", "4710", 7),
    ("DE", "Frankfurt", 10, None, None, 60, "d5", "603", "69", "55500", 8),
    ("FR", "Paris", 50, None, None, 60, "d5", "750", "1", "9900", 8),
    ("FR", "Lyon", 16, None, None, 60, "d5", "690", "4", "9900", 8),
    ("FR", "Marseille", 14, None, None, 60, "d5", "130", "4", "9900", 8),
    ("FR", "Toulouse", 10, None, None, 60, "d5", "310", "5", "9900", 8),
    ("FR", "Bordeaux", 10, None, None, 60, "d5", "330", "5", "9900", 8),
    ("CA", "Toronto", 45, "Ontario", "ON", -300, "ca", "M5V|M4W|M6J", "416", "55501", 7),
    ("CA", "Vancouver", 25, "British Columbia", "BC", -480, "ca", "V6B|V5K", "604", "55501", 7),
    ("CA", "Montreal", 20, "Quebec", "QC", -300, "ca", "H2X|H3B", "514", "55501", 7),
    ("CA", "Calgary", 10, "Alberta", "AB", -420, "ca", "T2P", "403", "55501", 7),
    ("AU", "Sydney", 40, "New South Wales", "NSW", 600, "d4", "20", "2", "5550", 8),
    ("AU", "Melbourne", 35, "Victoria", "VIC", 600, "d4", "30", "3", "7010", 8),
    ("AU", "Brisbane", 15, "Queensland", "QLD", 600, "d4", "40", "7", "7010", 8),
    ("AU", "Perth", 10, "Western Australia", "WA", 480, "d4", "60", "8", "9088", 8),
    ("BR", "São Paulo", 50, "São Paulo", "SP", -180, "br", "01310|04538|05425", "11", "9", 9),
    ("BR", "Rio de Janeiro", 25, "Rio de Janeiro", "RJ", -180, "br", "20040|22071", "21", "9", 9),
    ("BR", "Belo Horizonte", 13, "Minas Gerais", "MG", -180, "br", "30130", "31", "9", 9),
    ("BR", "Curitiba", 12, "Paraná", "PR", -180, "br", "80010", "41", "9", 9),
    ("ES", "Madrid", 60, None, None, 60, "d5", "280", "91", "", 7),
    ("ES", "Barcelona", 40, None, None, 60, "d5", "080", "93", "", 7),
    ("NL", "Amsterdam", 65, None, None, 60, "nl", "1012|1017|1071", "20", "", 7),
    ("NL", "Rotterdam", 35, None, None, 60, "nl", "3011|3012", "10", "", 7),
    ("IE", "Dublin", 80, None, None, 0, "ie", "D02|D04|D08", "1", "", 7),
    ("IE", "Cork", 20, None, None, 0, "ie", "T12|T23", "21", "", 6),
)

# device type, os, browser, weight, user agent
DEVICES: tuple[tuple[str, str, str, float, str], ...] = (
    ("desktop", "Windows", "Chrome", 12.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
    ("desktop", "Windows", "Chrome", 6.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36"),
    ("desktop", "Windows", "Edge", 5.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0"),
    ("desktop", "Windows", "Firefox", 2.5, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"),
    ("desktop", "macOS", "Safari", 6.5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15"),
    ("desktop", "macOS", "Chrome", 8.0, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
    ("desktop", "macOS", "Firefox", 1.0, "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"),
    ("desktop", "Linux", "Chrome", 1.2, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
    ("desktop", "Linux", "Firefox", 0.6, "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"),
    ("mobile", "iOS", "Safari", 14.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"),
    ("mobile", "iOS", "Safari", 5.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"),
    ("mobile", "iOS", "Chrome", 1.5, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"),
    ("mobile", "iOS", "Instagram", 2.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 327.0.0.32.120 (iPhone15,2; iOS 17_4_1; en_US; en; scale=3.00; 1179x2556; 590339436)"),
    ("mobile", "iOS", "Facebook", 1.5, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.38.109;FBBV/589433622;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4.1;FBSS/3;FBLC/en_US]"),
    ("mobile", "Android", "Chrome", 10.0, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36"),
    ("mobile", "Android", "Chrome", 8.0, "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36"),
    ("mobile", "Android", "Samsung Internet", 3.0, "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"),
    ("mobile", "Android", "Firefox", 0.7, "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"),
    ("tablet", "iPadOS", "Safari", 5.0, "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"),
    ("tablet", "Android", "Chrome", 2.0, "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Safari/537.36"),
)  # fmt: skip

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Emma", "Olivia", "Liam", "Noah", "Sophia", "Lucas", "Mia", "Amelia", "José", "María", "Zoë",
    "Renée", "Björn", "François", "Chloé", "Siobhán", "Anne-Marie", "Jean-Luc", "Søren", "Łukasz", "João",
    "Maël", "Jürgen", "Ingrid", "Hélène", "Mateo", "Valentina", "Aiden", "Priya", "Wei", "Yuki", "Fatima",
    "Omar", "Chidi", "Niamh", "Seán", "Dmitri", "Ana Luísa", "Lena",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "García", "Miller", "Davis", "Rodríguez", "Martínez",
    "O'Brien", "O'Connor", "MacDonald", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois",
    "Lefèvre", "Moreau", "Martin", "Silva", "Santos", "Oliveira", "Souza", "Pereira", "Taylor", "Wilson",
    "Thompson", "White", "Harris", "Clarke", "Walker", "Nguyen", "Kim", "Patel", "Singh", "Cohen",
    "van der Berg", "De Luca", "Rossi", "Smith-Jones", "Núñez", "Åkesson", "St. John", "D'Angelo",
    "Fitzgerald", "Kowalski", "Ó Súilleabháin",
)  # fmt: skip

# channels of a visit: name, utm_source, utm_medium, referrer options
CHANNELS = ("facebook", "instagram", "google_ads", "newsletter", "organic", "referral", "direct")
FACEBOOK, INSTAGRAM, GOOGLE_ADS, NEWSLETTER, ORGANIC, REFERRAL, DIRECT = range(7)
FIRST_VISIT_CHANNELS = (26, 17, 14, 7, 17, 6, 13)
RETURN_VISIT_CHANNELS = (12, 9, 8, 20, 14, 3, 34)
REFERRERS: tuple[tuple[str, ...], ...] = (
    ("https://l.facebook.com/", "https://m.facebook.com/"),
    ("https://l.instagram.com/",),
    ("https://www.google.com/",),
    ("",),
    (
        "https://www.google.com/",
        "https://www.google.com/",
        "https://www.bing.com/",
        "https://duckduckgo.com/",
    ),
    (
        "https://www.producthunt.com/",
        "https://www.reddit.com/r/VideoEditing/",
        "https://www.youtube.com/",
        "https://news.ycombinator.com/",
    ),
    ("",),
)

ALL_REFERRERS: tuple[str, ...] = tuple(dict.fromkeys(ref for group in REFERRERS for ref in group))

# site pages: path, title, weight as an ordinary page view
PAGES: tuple[tuple[str, str, float], ...] = (
    ("/", "FrameCraft | Make videos that sell", 18),
    ("/pricing", "Pricing", 14),
    ("/templates", "Templates", 16),
    ("/templates/product-launch-reel", "Product launch reel", 6),
    ("/templates/real-estate-tour", "Real estate tour", 4),
    ("/templates/podcast-clip", "Podcast clip", 5),
    ("/templates/black-friday-promo", "Black Friday promo", 3),
    ("/features/ai-captions", "AI captions", 5),
    ("/features/brand-kit", "Brand kit", 3),
    ("/editor", "Editor", 8),
    ("/blog/how-to-make-reels", "How to make Reels that convert", 4),
    ("/blog/video-ads-that-convert", "Video ads that convert", 3),
    ("/help/export-settings", "Export settings", 2),
    ("/login", "Log in", 4),
    ("/signup", "Sign up", 3),
    ("/account/projects", "Your projects", 5),
    ("/whats-new", "What's new", 1),
    ("/shop", "Shop", 4),
    ("/cart", "Cart", 0),
    ("/checkout", "Checkout", 0),
    ("/lp/ai-video-editor", "AI video editor", 0),
    ("/lp/creators", "For creators", 0),
    ("/lp/spring-sale", "Spring sale", 0),
    ("/lp/reels-maker", "Reels maker", 0),
    ("/lp/small-business", "Promo videos for small business", 0),
)
PAGE_INDEX = {path: i for i, (path, _, _) in enumerate(PAGES)}
# landing pages of unpaid visits, by channel (paid visits land where their ad points)
LANDINGS: tuple[tuple[str, ...], ...] = (
    ("/",),
    ("/",),
    ("/",),
    ("/whats-new", "/templates", "/pricing", "/shop"),
    ("/", "/blog/how-to-make-reels", "/templates", "/features/ai-captions", "/blog/video-ads-that-convert"),
    ("/", "/templates", "/shop"),
    ("/", "/editor", "/pricing", "/account/projects", "/shop"),
)

# shop catalog: sku, slug, list price in USD cents, weight
CATALOG: tuple[tuple[str, str, int, float], ...] = (
    ("TPL-1001", "product-launch-reel-pack", 1499, 10),
    ("TPL-1002", "real-estate-tour-pack", 2499, 6),
    ("TPL-1003", "podcast-clip-kit", 999, 12),
    ("TPL-1004", "black-friday-promo-pack", 1999, 7),
    ("TPL-1005", "wedding-highlights-pack", 3999, 4),
    ("TPL-1006", "restaurant-menu-reels", 1499, 6),
    ("TPL-1007", "fitness-coach-bundle", 2999, 5),
    ("TPL-1008", "youtube-intro-pack", 999, 11),
    ("STK-2001", "4k-b-roll-city-pack", 4999, 3),
    ("STK-2002", "lofi-music-license-pack", 2999, 4),
    ("STK-2003", "drone-footage-pack", 7999, 2),
    ("STK-2004", "studio-sfx-library", 1999, 5),
    ("BND-3001", "creator-mega-bundle", 12999, 1.5),
    ("BND-3002", "agency-all-access-bundle", 19999, 0.8),
    ("LUT-4001", "cinematic-lut-pack", 1499, 6),
    ("FNT-5001", "kinetic-typography-pack", 2499, 4),
)
QUANTITY_WEIGHTS = (78, 17, 5)  # 1, 2 or 3 items
TEMPLATES: tuple[tuple[str, int], ...] = (
    ("promo-reel-15s", 15), ("product-demo-30s", 30), ("testimonial-9x16", 30), ("podcast-audiogram", 60),
    ("real-estate-walkthrough", 60), ("event-recap", 30), ("sale-countdown", 15), ("tutorial-steps", 60),
    ("before-after-split", 15), ("quote-card-animated", 6), ("logo-reveal", 6), ("slideshow-classic", 30),
    ("ugc-ad-hook", 15), ("unboxing-highlight", 30), ("menu-showcase", 15), ("fitness-progress", 30),
    ("travel-montage", 60), ("news-recap", 30), ("birthday-montage", 60), ("lyric-video", 60),
)  # fmt: skip
RESOLUTIONS = (("720p", 20.0), ("1080p", 65.0), ("4k", 15.0))
META_PLACEMENTS = (
    ("facebook_feed", "facebook_reels", "facebook_stories", "audience_network"),
    ("instagram_feed", "instagram_reels", "instagram_stories", "instagram_explore"),
)
SIGNUP_METHODS = ("email", "google", "apple")
AD_FORMATS = ("video", "carousel", "image")  # Meta creatives
MATCH_TYPES = ("exact", "phrase", "broad")  # Google keywords

# Meta campaigns: name, audience kind, landing page, utm_medium used by whoever set it up
META_CAMPAIGNS: tuple[tuple[str, str, str, str], ...] = (
    ("Prospecting | AI Video Editor | Broad", "prospecting", "/lp/ai-video-editor", "paid_social"),
    ("Retargeting | Site Visitors 30d", "retargeting", "/pricing", "paid_social"),
    ("Prospecting | Templates | Lookalike 1%", "prospecting", "/templates", "paid_social"),
    ("Retargeting | Cart Abandoners 7d", "retargeting", "/shop", "paid_social"),
    ("Creators | UGC | Interests", "prospecting", "/lp/creators", "cpc"),
    ("Spring Sale | Template Bundles", "prospecting", "/lp/spring-sale", "paid_social"),
    ("Reels Maker | Advantage+", "prospecting", "/lp/reels-maker", "paid_social"),
    ("Small Business | Promo Videos", "prospecting", "/lp/small-business", "cpc"),
    ("Retargeting | Free Plan Users", "retargeting", "/pricing", "paid_social"),
    ("Brand | Video Testimonials", "prospecting", "/", "paid_social"),
)
META_AUDIENCES = {
    "prospecting": (
        "Broad | 18-65+",
        "Lookalike 1% | Purchasers",
        "Lookalike 3% | Signups",
        "Interests | Video Editing",
        "Interests | Small Business",
        "Interests | Content Creators",
        "Advantage+ Audience",
    ),
    "retargeting": ("Website Visitors 30d", "Engaged Instagram 60d", "Add to Cart 14d", "Video Viewers 50%"),
}
META_CREATIVES = (
    ("UGC Testimonial v1", "video"),
    ("UGC Testimonial v2", "video"),
    ("Product Demo 15s", "video"),
    ("Before/After Reel", "video"),
    ("Carousel | Top Templates", "carousel"),
    ("Static | 20% Off", "image"),
    ("Founder Story 30s", "video"),
    ("Tutorial Hook 9:16", "video"),
)
# Google Ads search campaigns: name, landing page, ad groups as (name, keyword, match type)
GOOGLE_CAMPAIGNS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Search | Brand",
        "/",
        (("Brand | Exact", "framecraft", "exact"), ("Brand | App", "framecraft video editor", "phrase")),
    ),
    (
        "Search | AI Video Editor | Generic",
        "/lp/ai-video-editor",
        (
            ("AI Video Editor", "ai video editor", "phrase"),
            ("Online Video Editor", "online video editor", "broad"),
            ("Video Maker App", "video maker app", "phrase"),
        ),
    ),
    (
        "Search | Video Templates",
        "/templates",
        (
            ("Reel Templates", "instagram reel templates", "phrase"),
            ("Promo Templates", "promo video templates", "broad"),
        ),
    ),
    (
        "Search | Competitors",
        "/lp/ai-video-editor",
        (
            ("Canva Alternative", "canva video alternative", "broad"),
            ("CapCut Alternative", "capcut alternative", "broad"),
        ),
    ),
)
POOL_META_PROSPECTING, POOL_META_RETARGETING, POOL_GOOGLE = range(3)


# every page of the site (and shop product pages) as a full URL; landing URLs with a query are added per run
SITE_URLS = pl.Series(
    [SITE + path for path, _, _ in PAGES] + [f"{SITE}/shop/{slug}" for _, slug, _, _ in CATALOG],
    dtype=pl.String,
)

# how timestamps are written: ISO with Z, ISO with +00:00, ISO in the person's local offset, epoch ms
TIME_FORMAT_WEIGHTS = {"events": (50, 20, 15, 15), "conversions": (40, 25, 15, 20)}
