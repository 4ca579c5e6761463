"""The service's features (see `host.feature`): add a feature's `FEATURE` here, once."""

from host.feature import Feature

FEATURES: tuple[Feature, ...] = ()
