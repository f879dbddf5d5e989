"""The built-in channels. Limits are the channels' published maximums for the field we fill."""

from __future__ import annotations

from copyflow.plugins.channels.base import ChannelRules

# Claims a marketplace forbids in titles and descriptions (Amazon's listing style rules).
_PROMOTIONAL = (
    "best seller",
    "bestseller",
    "best price",
    "cheapest",
    "free shipping",
    "sale",
    "discount",
    "limited time",
    "hot deal",
    "top rated",
    "#1",
    "100% guaranteed",
    "buy now",
)

BUILTIN_CHANNELS: dict[str, ChannelRules] = {
    rules.name: rules
    for rules in (
        ChannelRules(
            name="default",
            title_max=150,
            description_max=1000,
            guidance="a clear, factual title and a one or two sentence description",
        ),
        ChannelRules(
            name="google",
            title_max=150,
            description_max=5000,
            guidance="Google Merchant Center: the most important details first in the title",
        ),
        ChannelRules(
            name="amazon",
            title_max=200,
            description_max=2000,
            promotional_phrases=_PROMOTIONAL,
            no_all_caps_words=True,
            guidance="Amazon: brand first, no promotional claims, no words in capitals",
        ),
        ChannelRules(
            name="ebay",
            title_max=80,
            description_max=4000,
            guidance="eBay: a short title of at most 80 characters with the key facts",
        ),
        ChannelRules(
            name="shopify_seo",
            title_max=70,
            description_max=160,
            guidance="Shopify SEO: a meta title under 70 characters and a meta description "
            "under 160 characters",
        ),
    )
}
