"""Place names of local documents: the short label of a region ("柳南区") and whether a question
names it. Local plans bind their own region only, so an answer quotes one only when the user's
region is that region or the question names it (README "Answering")."""
from __future__ import annotations

import re

from bot.text.normalize import normalize

_UNIT = re.compile(r".+?(?:自治区|自治州|特别行政区|省|市|区|县|盟|旗)")
_SUFFIX = re.compile(r"(?:自治区|自治州|特别行政区|省|市|区|县|盟|旗)$")
NATIONAL = ("全国", "", None)
# The short names of China's province-level divisions: each sets some rules of its own (the amount of 高温津贴,
# 《防暑降温措施管理办法》第十七条; its own regulations), which a national text does not give
PROVINCES = ("北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建",
             "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海",
             "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门")


def region_label(region: str | None) -> str:
    """The smallest administrative unit of a region: "广西壮族自治区柳州市柳南区" → "柳南区"."""
    if region in NATIONAL:
        return ""
    units = _UNIT.findall(region)
    return units[-1] if units else region


def region_stem(region: str | None) -> str:
    """The label without its suffix, as people write it: "广东省" → "广东", "秦皇岛市" → "秦皇岛"."""
    label = region_label(region)
    stem = _SUFFIX.sub("", label)
    return stem if len(stem) >= 2 else label


def names_region(text: str, region: str | None) -> bool:
    """Whether the (normalised) text names this region by its short name."""
    stem = region_stem(region)
    return bool(stem) and normalize(stem) in normalize(text)


def is_local(region: str | None) -> bool:
    """A document of one region (a local plan), not a national one."""
    return region not in NATIONAL


def provinces_named(text: str) -> set[str]:
    """The province-level divisions (PROVINCES) a text names by their short names."""
    norm = normalize(text)
    return {p for p in PROVINCES if normalize(p) in norm}
