"""What a web page tells a local-SEO audit: title, meta tags, headings, text, phones, links, LocalBusiness data.

The page is parsed with lxml. LocalBusiness data is read from JSON-LD (`<script type=
"application/ld+json">`, including `@graph` lists) and, failing that, from schema.org microdata
(`itemtype`/`itemprop`). Phone numbers are found with a pattern and compared by their last ten
digits: the audit only needs to know whether two listings show the same number, not to validate
numbering plans (which is what the phonenumbers library would add).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from backplane.agents.base import AgentInputError
from backplane.agents.text import normalize

# LocalBusiness and its schema.org subtypes that businesses commonly use.
LOCAL_BUSINESS_TYPES = frozenset(
    """
    LocalBusiness AnimalShelter ArchiveOrganization AutomotiveBusiness AutoBodyShop AutoDealer AutoRepair
    AutoWash ChildCare Dentist DryCleaningOrLaundry EmergencyService EmploymentAgency EntertainmentBusiness
    FinancialService AccountingService BankOrCreditUnion InsuranceAgency FoodEstablishment Bakery BarOrPub
    Brewery CafeOrCoffeeShop Distillery FastFoodRestaurant IceCreamShop Restaurant Winery
    GovernmentOffice HealthAndBeautyBusiness BeautySalon DaySpa HairSalon NailSalon TattooParlor
    HomeAndConstructionBusiness Electrician GeneralContractor HVACBusiness HousePainter Locksmith
    MovingCompany Plumber RoofingContractor InternetCafe LegalService Attorney Notary Library
    LodgingBusiness BedAndBreakfast Campground Hostel Hotel Motel Resort MedicalBusiness Optician Pharmacy
    Physician MedicalClinic ProfessionalService RadioStation RealEstateAgent RecyclingCenter SelfStorage
    ShoppingCenter SportsActivityLocation ExerciseGym GolfCourse HealthClub SportsClub StadiumOrArena
    Store BikeStore BookStore ClothingStore ComputerStore ConvenienceStore DepartmentStore ElectronicsStore
    Florist FurnitureStore GardenStore GroceryStore HardwareStore HobbyShop HomeGoodsStore JewelryStore
    LiquorStore MensClothingStore MobilePhoneStore MovieRentalStore MusicStore OfficeEquipmentStore
    OutletStore PawnShop PetStore ShoeStore SportingGoodsStore TireShop ToyStore WholesaleStore
    TelevisionStation TouristInformationCenter TravelAgency
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_MAPS = re.compile(r"(google\.[a-z.]+/maps|maps\.google\.|goo\.gl/maps|maps\.app\.goo\.gl|g\.page/|business\.google\.)")
_PHONE = re.compile(r"(?<![\d\w])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?!\d)")
_ABBREVIATIONS = {
    "street": "st",
    "avenue": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "place": "pl",
    "court": "ct",
    "suite": "ste",
    "highway": "hwy",
    "parkway": "pkwy",
    "square": "sq",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
    "apartment": "apt",
    "floor": "fl",
}


@dataclass(slots=True)
class LocalBusiness:
    type: str
    name: str | None = None
    street: str | None = None
    locality: str | None = None
    region: str | None = None
    postal_code: str | None = None
    telephone: str | None = None
    url: str | None = None
    has_hours: bool = False
    has_geo: bool = False
    area_served: str = ""


@dataclass(slots=True)
class Site:
    url: str
    title: str | None
    meta_description: str | None
    has_viewport: bool
    h1: list[str]
    headings: list[str]  # h2 and h3
    body_text: str
    images: int
    images_with_alt: int
    phones: set[str]  # phone_key of every number on the page (text and tel: links)
    links: list[str]
    maps_links: list[str]
    local_business: LocalBusiness | None
    structured_data_errors: list[str] = field(default_factory=list)


def normalize_name(value: str) -> str:
    """Lowercase words without punctuation: "Joe\u2019s Coffee & Tea" -> "joes coffee and tea"."""
    value = value.lower().replace("&", " and ")
    value = re.sub(r"['\u2019`]", "", value)
    return normalize(re.sub(r"[^a-z0-9]+", " ", value))


def normalize_address(value: str) -> str:
    """`normalize_name` with the usual street abbreviations applied: "123 Pine Street" -> "123 pine st"."""
    return " ".join(_ABBREVIATIONS.get(word, word) for word in normalize_name(value).split())


def phone_key(value: str | None) -> str | None:
    """A phone number's last ten digits (its national number in most countries), or None."""
    digits = re.sub(r"\D", "", value or "")
    return digits[-10:] if len(digits) >= 7 else None


def phones_in(text: str) -> list[str]:
    return [m.group(0) for m in _PHONE.finditer(text) if 10 <= len(re.sub(r"\D", "", m.group(0))) <= 15]


def _text(element: Any) -> str:
    return normalize(element.text_content()) if element is not None else ""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def _string(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("name") or value.get("@id")
    if isinstance(value, list):
        value = ", ".join(s for s in (_string(v) for v in value) if s)
    return normalize(str(value)) if value not in (None, "") else None


def _json_ld_items(raw: str, errors: list[str]) -> list[dict[str, Any]]:
    try:
        data = json.loads(raw, strict=False)
    except json.JSONDecodeError as exc:
        errors.append(f"invalid JSON-LD: {exc.msg}")
        return []
    except RecursionError:  # nested deeper than any real structured data
        errors.append("invalid JSON-LD: nested too deeply")
        return []
    items: list[dict[str, Any]] = []
    for item in _as_list(data):
        if isinstance(item, dict):
            items.append(item)
            items += [g for g in _as_list(item.get("@graph")) if isinstance(g, dict)]
    return items


def _business_from_json_ld(item: dict[str, Any]) -> LocalBusiness | None:
    types = [str(t).rsplit("/", 1)[-1] for t in _as_list(item.get("@type"))]
    kind = next((t for t in types if t in LOCAL_BUSINESS_TYPES), None)
    if kind is None:
        return None
    address = item.get("address")
    address = address[0] if isinstance(address, list) and address else address
    business = LocalBusiness(
        type=kind,
        name=_string(item.get("name")),
        telephone=_string(item.get("telephone")),
        url=_string(item.get("url")),
    )
    if isinstance(address, dict):
        business.street = _string(address.get("streetAddress"))
        business.locality = _string(address.get("addressLocality"))
        business.region = _string(address.get("addressRegion"))
        business.postal_code = _string(address.get("postalCode"))
    elif isinstance(address, str):
        business.street = normalize(address)
    business.has_hours = bool(item.get("openingHours") or item.get("openingHoursSpecification"))
    business.has_geo = isinstance(item.get("geo"), dict) or bool(item.get("hasMap"))
    business.area_served = _string(item.get("areaServed")) or ""
    return business


def _business_from_microdata(document: Any) -> LocalBusiness | None:
    for scope in document.xpath("//*[@itemscope][@itemtype]"):
        kind = str(scope.get("itemtype")).rstrip("/").rsplit("/", 1)[-1]
        if kind not in LOCAL_BUSINESS_TYPES:
            continue

        def prop(name: str, scope: Any = scope) -> str | None:
            found = scope.xpath(f".//*[@itemprop='{name}']")
            if not found:
                return None
            element = found[0]
            value = element.get("content") or element.get("href") or element.text_content()
            return normalize(value) or None

        return LocalBusiness(
            type=kind,
            name=prop("name"),
            street=prop("streetAddress"),
            locality=prop("addressLocality"),
            region=prop("addressRegion"),
            postal_code=prop("postalCode"),
            telephone=prop("telephone"),
            url=prop("url"),
            has_hours=prop("openingHours") is not None,
            has_geo=prop("geo") is not None,
            area_served=prop("areaServed") or "",
        )
    return None


def read_site(html: str, url: str) -> Site:
    if not html.strip():
        raise AgentInputError(f"The website {url} answered an empty page.")
    try:
        document = lxml.html.document_fromstring(html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    except (etree.ParserError, ValueError) as exc:
        raise AgentInputError(f"The website {url} did not answer readable HTML.") from exc
    errors: list[str] = []
    business = None
    for script in document.xpath("//script[@type='application/ld+json']"):
        for item in _json_ld_items(script.text or "", errors):
            business = business or _business_from_json_ld(item)
    business = business or _business_from_microdata(document)
    metas = {(m.get("name") or m.get("property") or "").lower(): m.get("content") for m in document.iter("meta")}
    links = [urljoin(url, h.strip()) for h in document.xpath("//a/@href") if isinstance(h, str) and h.strip()]
    tel_links = [
        h.strip()[4:] for h in document.xpath("//a/@href") if isinstance(h, str) and h.strip().startswith("tel:")
    ]
    images = document.xpath("//img")
    title = _text(document.find(".//title")) or None
    for element in document.xpath("//script|//style|//noscript|//template|//head"):
        element.drop_tree()
    body = _text(document.find("body")) or _text(document)
    phones = {k for k in (phone_key(p) for p in [*tel_links, *phones_in(body)]) if k}
    return Site(
        url=url,
        title=title,
        meta_description=normalize(metas.get("description") or "") or None,
        has_viewport=bool(metas.get("viewport")),
        h1=[_text(h) for h in document.iter("h1") if _text(h)],
        headings=[_text(h) for h in document.iter("h2", "h3") if _text(h)],
        body_text=body,
        images=len(images),
        images_with_alt=sum(1 for i in images if (i.get("alt") or "").strip()),
        phones=phones,
        links=links,
        maps_links=[link for link in links if _MAPS.search(link)],
        local_business=business,
        structured_data_errors=errors,
    )
