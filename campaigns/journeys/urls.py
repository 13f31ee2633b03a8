"""Journey builder pages, mounted at /campaigns/journeys/ (namespace campaigns:journeys)."""

from django.urls import path

from campaigns.journeys import views

app_name = "journeys"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.journey_new, name="new"),
    path("<int:pk>/", views.journey_detail, name="detail"),
    path("<int:pk>/settings/", views.journey_settings, name="settings"),
    path("<int:pk>/goal/", views.journey_goal, name="goal"),
    path("<int:pk>/enroll/", views.journey_enroll, name="enroll"),
    path(
        "<int:pk>/enrollments/<int:enrollment_id>/remove/",
        views.enrollment_remove,
        name="enrollment_remove",
    ),
    path("<int:pk>/steps/add/", views.step_add, name="step_add"),
    path("<int:pk>/steps/<slug:key>/", views.step_edit, name="step"),
    path("<int:pk>/steps/<slug:key>/remove/", views.step_remove, name="step_remove"),
    path("<int:pk>/<str:action>/", views.journey_action, name="action"),
]
