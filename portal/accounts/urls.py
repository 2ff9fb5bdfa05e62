from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.sign_out, name="logout"),
    path("oidc/login/", views.sso_login, name="sso_login"),
    path("oidc/callback/", views.sso_callback, name="sso_callback"),
    path("lockouts/", views.lockout_list, name="lockouts"),
    path("lockouts/unlock/", views.lockout_unlock, name="lockout_unlock"),
]
