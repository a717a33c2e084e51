from django.apps import AppConfig


class ProxyhubConfig(AppConfig):
    name = "proxyhub"

    def ready(self) -> None:
        from proxyhub import checks  # noqa: F401  (registers the system checks)
