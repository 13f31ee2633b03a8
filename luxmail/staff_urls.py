"""``/staff/``: staff management, invitations and break-glass (``luxmail/staff_views.py``)."""

from django.urls import path

from luxmail import staff_views

app_name = "staff"

urlpatterns = [
    path("", staff_views.staff_index, name="index"),
    path("<int:user_id>/", staff_views.staff_detail, name="detail"),
    path("<int:user_id>/roles/", staff_views.staff_roles, name="roles"),
    path("<int:user_id>/active/", staff_views.staff_active, name="active"),
    path("<int:user_id>/mfa-reset/", staff_views.staff_mfa_reset, name="mfa_reset"),
    path("<int:user_id>/sessions/end/", staff_views.staff_session_end, name="session_end"),
    path(
        "invitations/<uuid:invitation_uuid>/revoke/",
        staff_views.invitation_revoke,
        name="invitation_revoke",
    ),
    # Public: the link from the invitation mail (the token is checked by the view).
    path("invitation/<str:token>/", staff_views.invitation_accept, name="invitation_accept"),
    path("break-glass/", staff_views.break_glass_review, name="break_glass"),
    path("break-glass/request/", staff_views.break_glass_request, name="break_glass_request"),
    path(
        "break-glass/<uuid:grant_uuid>/", staff_views.break_glass_decide, name="break_glass_decide"
    ),
]
