"""The service's features (see `host.feature`): add a feature's `FEATURE` here, once."""

from host.feature import Feature
from host.features import orders

FEATURES: tuple[Feature, ...] = (orders.FEATURE,)
