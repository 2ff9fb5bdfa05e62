from django.apps import AppConfig


class ConformanceConfig(AppConfig):
    name = "portal.conformance"
    label = "conformance"
    verbose_name = "Conformance self-test"
