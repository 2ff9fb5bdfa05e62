from django.urls import path

from . import factor_views, people_views, views

app_name = "accounts"
urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.sign_out, name="logout"),
    path("oidc/login/", views.sso_login, name="sso_login"),
    path("oidc/callback/", views.sso_callback, name="sso_callback"),
    path("lockouts/", views.lockout_list, name="lockouts"),
    path("lockouts/unlock/", views.lockout_unlock, name="lockout_unlock"),
    path("factor/", factor_views.factor_home, name="factor_home"),
    path("factor/enrol/", factor_views.factor_enrol, name="factor_enrol"),
    path("factor/verify/", factor_views.factor_verify, name="factor_verify"),
    path("factor/recovery-codes/", factor_views.recovery_codes_new, name="recovery_codes_new"),
    path("people/", people_views.person_list, name="people"),
    path("people/invite/", people_views.person_invite, name="person_invite"),
    path("people/<int:pk>/", people_views.person_detail, name="person"),
    path("people/<int:pk>/roles/", people_views.person_roles, name="person_roles"),
    path("people/<int:pk>/reach/", people_views.person_reach, name="person_reach"),
    path("people/<int:pk>/active/", people_views.person_active, name="person_active"),
    path(
        "people/<int:pk>/factor-reset/",
        people_views.person_factor_reset,
        name="person_factor_reset",
    ),
    path("welcome/<uidb64>/<token>/", people_views.password_set, name="password_set"),
]
