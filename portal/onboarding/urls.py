from django.urls import path

from .views import letters, plans, register, tasks

app_name = "onboarding"
urlpatterns = [
    path("", plans.plan_list, name="list"),
    path("new/", plans.plan_create_view, name="create"),
    path("my-tasks/", plans.my_tasks, name="my_tasks"),
    path("<int:pk>/", plans.plan_detail, name="detail"),
    path("<int:pk>/mailboxes/", plans.plan_edit, name="edit"),
    path("<int:pk>/report/", plans.plan_report, name="report"),
    path("<int:pk>/tasks/<int:task_pk>/", tasks.task_detail, name="task"),
    path("<int:pk>/tasks/<int:task_pk>/update/", tasks.task_update_view, name="task_update"),
    path("<int:pk>/tasks/<int:task_pk>/reopen/", tasks.task_reopen, name="task_reopen"),
    path(
        "<int:pk>/tasks/<int:task_pk>/certificate/", tasks.task_certificate, name="task_certificate"
    ),
    path("<int:pk>/tasks/<int:task_pk>/evidence/", tasks.evidence_upload, name="evidence_upload"),
    path("<int:pk>/tasks/<int:task_pk>/email/", tasks.task_draft_letter, name="task_letter"),
    path("<int:pk>/evidence/<int:evidence_pk>/", tasks.evidence_download, name="evidence"),
    path("<int:pk>/decisions/<int:decision_pk>/", tasks.decision_record_view, name="decision"),
    path("<int:pk>/emails/new/", letters.letter_create, name="letter_create"),
    path("<int:pk>/emails/<int:letter_pk>/", letters.letter_detail, name="letter"),
    path("<int:pk>/emails/<int:letter_pk>/edit/", letters.letter_edit, name="letter_edit"),
    path(
        "<int:pk>/emails/<int:letter_pk>/regenerate/",
        letters.letter_regenerate,
        name="letter_regenerate",
    ),
    path("<int:pk>/emails/<int:letter_pk>/eml/", letters.letter_download, name="letter_download"),
    path("<int:pk>/emails/<int:letter_pk>/sent/", letters.letter_sent, name="letter_sent"),
    path("<int:pk>/emails/<int:letter_pk>/reply/", letters.letter_reply, name="letter_reply"),
    path("<int:pk>/allow-list/", register.allow_list, name="allow_list"),
    path("<int:pk>/allow-list/add/", register.allow_list_add, name="allow_list_add"),
    path(
        "<int:pk>/allow-list/<int:entry_pk>/remove/",
        register.allow_list_remove,
        name="allow_list_remove",
    ),
    path("gate/<int:mailbox_pk>/", register.gate_detail, name="gate"),
    path("gate/<int:mailbox_pk>/override/", register.gate_override, name="gate_override"),
    path("gate/overrides/<int:override_pk>/revoke/", register.gate_revoke, name="gate_revoke"),
]
