"""Portal URLs, mounted at the site root so the two audiences get separate prefixes:

* ``/portal/<token>/…`` — the recipients' pages: public, exempt from the staff MFA
  gate (``luxmail/accounts/middleware.py``), authenticated by token + code;
* ``/secure-messages/…`` — the staff pages, behind the MFA gate like every staff page.
"""

from django.urls import path

from portal import conversation_views, signup_staff, signup_views, staff_views, views

app_name = "portal"

urlpatterns = [
    # Recipients (public).
    path("portal/<str:token>/", views.start, name="start"),
    path("portal/<str:token>/code/", views.send_code, name="send_code"),
    path("portal/<str:token>/verify/", views.verify, name="verify"),
    path("portal/<str:token>/read/", views.read, name="read"),
    path("portal/<str:token>/reply/", views.reply, name="reply"),
    path("portal/<str:token>/sign-out/", views.sign_out, name="sign_out"),
    path(
        "portal/<str:token>/attachments/<uuid:attachment>/",
        conversation_views.attachment_recipient,
        name="attachment",
    ),
    # Sign-up forms and their double opt-in (public).
    path("f/confirm/<str:token>/", signup_views.confirm, name="signup_confirm"),
    path("f/<slug:slug>/", signup_views.form_page, name="signup_form"),
    path("f/<slug:slug>/brand.css", signup_views.brand_css, name="signup_brand"),
    path("f/<slug:slug>/embed.js", signup_views.embed_js, name="signup_embed"),
    # Staff.
    path("secure-messages/", staff_views.index, name="index"),
    path("signup-forms/", signup_staff.index, name="signup_forms"),
    path("signup-forms/new/", signup_staff.form_edit, name="signup_form_new"),
    path("signup-forms/<int:pk>/", signup_staff.form_edit, name="signup_form_edit"),
    path("signup-forms/<int:pk>/publish/", signup_staff.form_publish, name="signup_form_publish"),
    path("signup-forms/settings/", signup_staff.settings_edit, name="signup_settings"),
    path("signup-forms/authorizations/new/", signup_staff.authorization_edit, name="auth_new"),
    path(
        "signup-forms/authorizations/<int:pk>/", signup_staff.authorization_edit, name="auth_edit"
    ),
    path(
        "signup-forms/authorizations/<int:pk>/publish/",
        signup_staff.authorization_publish,
        name="auth_publish",
    ),
    path("secure-messages/replies/", staff_views.replies, name="replies"),
    path("secure-messages/replies/<uuid:uuid>/", staff_views.reply_detail, name="reply"),
    path("secure-messages/conversations/", conversation_views.inbox, name="conversations"),
    path(
        "secure-messages/attachments/<uuid:attachment>/",
        conversation_views.attachment_staff,
        name="attachment_staff",
    ),
    path(
        "secure-messages/<uuid:uuid>/conversation/",
        conversation_views.conversation,
        name="conversation",
    ),
    path("secure-messages/<uuid:uuid>/assign/", conversation_views.assign, name="assign"),
    path("secure-messages/<uuid:uuid>/done/", conversation_views.mark_done, name="done"),
    path("secure-messages/<uuid:uuid>/", staff_views.detail, name="detail"),
    path("secure-messages/<uuid:uuid>/revoke/", staff_views.revoke, name="revoke"),
    path("secure-messages/<uuid:uuid>/unlock/", staff_views.unlock, name="unlock"),
]
