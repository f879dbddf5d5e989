"""Word lists the checks use: values a model tends to invent, and language markers.

Written for this project; deliberately small and common. A value outside these lists is not
checked by the guard (numbers are checked whatever they are).
"""

from __future__ import annotations

import re


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


COLORS = words(
    """
    black white grey gray silver gold golden red maroon burgundy crimson pink rose magenta
    fuchsia purple violet lavender lilac mauve blue navy teal turquoise aqua cyan green olive
    lime mint khaki yellow mustard orange peach coral brown tan beige cream ivory camel
    charcoal bronze copper multicolor multicolour transparent
    """
)

MATERIALS = words(
    """
    cotton polyester nylon spandex elastane lycra viscose rayon linen wool merino cashmere
    silk satin denim leather suede velvet fleece acrylic jersey chiffon georgette crepe
    bamboo hemp jute canvas rubber plastic silicone steel aluminium aluminum iron copper
    brass bronze titanium glass ceramic porcelain wood wooden oak walnut teak pine marble
    granite stone gold silver platinum
    """
)

# Standalone size tokens (upper case in copy). Numeric sizes are numbers, checked as such.
SIZES = words("XXS XS S M L XL XXL XXXL 2XL 3XL 4XL")

# Well-known brands a small model drops into copy for any product of their kind.
BRANDS = words(
    """
    nike adidas puma reebok asics fila skechers converse vans levis levi's zara h&m uniqlo
    gucci prada chanel dior armani versace apple samsung sony lg philips bosch dell hp lenovo
    asus acer microsoft google xiaomi huawei oneplus canon nikon ikea dyson nestle loreal
    l'oreal maybelline lakme nivea dove gillette rolex casio fossil titan tommy hilfiger
    calvin klein ralph lauren lacoste wrangler lee
    """
)

# Unit spellings -> one canonical form, so "65 watts" is grounded by "65W". Longest first in
# the pattern. "in" and "x" are not units here: "2 in a box", "40x60" are read otherwise.
UNIT_FORMS = {
    "mm": "mm",
    "cm": "cm",
    "m": "m",
    "km": "km",
    "inch": "inch",
    "inches": "inch",
    '"': "inch",
    "ft": "ft",
    "feet": "ft",
    "kg": "kg",
    "g": "g",
    "gram": "g",
    "grams": "g",
    "mg": "mg",
    "lb": "lb",
    "lbs": "lb",
    "oz": "oz",
    "l": "l",
    "litre": "l",
    "liter": "l",
    "litres": "l",
    "liters": "l",
    "ml": "ml",
    "cl": "cl",
    "w": "w",
    "watt": "w",
    "watts": "w",
    "kw": "kw",
    "v": "v",
    "volt": "v",
    "volts": "v",
    "mah": "mah",
    "gb": "gb",
    "tb": "tb",
    "mb": "mb",
    "hz": "hz",
    "mhz": "mhz",
    "ghz": "ghz",
    "pcs": "pcs",
    "pc": "pcs",
    "pieces": "pcs",
    "piece": "pcs",
    "pack": "pcs",
    "%": "%",
    "percent": "%",
}
UNITS = "|".join(re.escape(u) for u in sorted(UNIT_FORMS, key=len, reverse=True))

# Words that name a gender as catalogs give it ("Men", "Women", ...), and how English copy
# names it in front of a product ("Men's Jeans").
GENDER_WORDS = {
    "men": ("men", "men's", "mens", "man", "male"),
    "women": ("women", "women's", "womens", "woman", "female", "ladies"),
    "boys": ("boys", "boy", "boy's", "boys'"),
    "girls": ("girls", "girl", "girl's", "girls'"),
    "unisex": ("unisex",),
}
GENDER_PREFIX = {"men": "Men's", "women": "Women's", "boys": "Boys'", "girls": "Girls'"}

# Frequent function words: enough to tell which language a sentence is in.
STOPWORDS = {
    "en": words("the and with for this that your from are is of to in on a an it its made"),
    "de": words("der die das und mit für ist ein eine aus im in den dem zu von auf sie ihr"),
    "fr": words("le la les et avec pour est un une des du de en au aux"),
    "es": words("el la los las y con para es un una de del en por"),
    "it": words("il lo la gli le e con per è un una di del in da"),
    "nl": words("de het een en met voor is van in op uit"),
}

# Text in product data that tries to instruct the model, or to forge its answer format. Such a
# sentence is data like any other, but what only it says must not reach the copy.
# Role labels count only at the start of a sentence ("Operating system: Android" is data),
# and the answer format's labels only in capitals, as the prompt writes them.
INJECTION = re.compile(
    r"(?i:\bignore\s+(?:all\s+|the\s+|any\s+)?(?:previous|above|prior|earlier)\b|"
    r"\bdisregard\b|\bnew\s+instructions?\b|\byou\s+are\s+now\b)|"
    r"(?i:^\W*(?:system|assistant)\s*:)|\b(?:TITLE|DESCRIPTION)\s*:"
)

# Common product-type nouns across catalogs (singular): a description that names one the
# product's fields do not give is describing another product ("a mug" for a lipstick).
PRODUCT_NOUNS = words(
    """
    mug cup tea coffee kettle teapot bottle jar plate bowl glass pan pot skillet knife fork
    spoon lamp bulb light chair table sofa desk bed mattress pillow blanket towel curtain rug
    shirt tshirt t-shirt top blouse dress skirt jeans trouser pant short jacket coat hoodie
    sweater sweatshirt kurta saree sari dupatta legging sock shoe sneaker sandal boot heel
    slipper flip-flop bag backpack wallet belt watch bracelet necklace earring ring cap hat
    scarf glove sunglasses lipstick mascara foundation perfume shampoo conditioner soap lotion
    cream serum oat cereal rice pasta flour sugar coffee juice beer wine snack chocolate biscuit
    phone smartphone tablet laptop charger cable headphone earphone speaker camera keyboard
    mouse monitor television tv router battery filter dumbbell mat ball racket bicycle helmet
    toy doll puzzle book pen notebook kurti tunic blazer waistcoat suit tie cufflink stole
    shawl capri jegging churidar salwar lehenga brief boxer bra trunk vest camisole nightdress
    pyjama romper jumpsuit clutch handbag pouch pendant bangle anklet flat loafer moccasin
    deodorant kajal eyeliner nail polish lip gloss blush sunscreen trolley suitcase duffel
    headband muffler beanie tights stocking swimsuit bikini shirt earbud smartwatch
    """
)

# Kept upper case when a lower-case title is capitalised.
ACRONYMS = words(
    "led usb hdmi tv lcd oled uv ac dc hd uhd ssd hdd ram cpu gpu pc nfc gps spf bpa diy "
    "xs xl xxl xxxl"
)
# Not capitalised inside a title.
SMALL_WORDS = words("a an and or the of for with in on to by at from")
