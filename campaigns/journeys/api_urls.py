"""Journey API routes (mounted under /api/v1/ through ``campaigns/api_urls.py``)."""

from django.urls import path

from campaigns.journeys import api

urlpatterns = [
    path("journeys/", api.JourneyListCreateApi.as_view(), name="api-journeys"),
    path("journeys/<int:pk>/", api.JourneyDetailApi.as_view(), name="api-journey"),
    path(
        "journeys/<int:pk>/definition/",
        api.JourneyDefinitionApi.as_view(),
        name="api-journey-definition",
    ),
    path(
        "journeys/<int:pk>/activate/", api.JourneyActivateApi.as_view(), name="api-journey-activate"
    ),
    path("journeys/<int:pk>/publish/", api.JourneyPublishApi.as_view(), name="api-journey-publish"),
    path("journeys/<int:pk>/pause/", api.JourneyPauseApi.as_view(), name="api-journey-pause"),
    path("journeys/<int:pk>/resume/", api.JourneyResumeApi.as_view(), name="api-journey-resume"),
    path("journeys/<int:pk>/archive/", api.JourneyArchiveApi.as_view(), name="api-journey-archive"),
    path(
        "journeys/<int:pk>/enrollments/",
        api.JourneyEnrollmentsApi.as_view(),
        name="api-journey-enrollments",
    ),
    path("journeys/<int:pk>/events/", api.JourneyEventApi.as_view(), name="api-journey-events"),
]
