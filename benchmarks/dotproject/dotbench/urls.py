"""Only DOT's OAuth2 endpoints, under /o/ as DOT's documentation mounts them."""

from django.urls import include, path

urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
