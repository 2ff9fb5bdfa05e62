"""Form building blocks shared by every app: no label colons, an error summary for the top, and
model choices narrowed to the person's reach.

Given `user=`, every model choice whose queryset has a `within_reach(user)` method (mailboxes,
organisations, certificates, plans...; portal.accounts.reach decides) offers only the rows within
that person's reach, so a choice out of reach is neither shown nor accepted ("Select a valid
choice"). Choices set after `__init__` are narrowed too, before the form is shown or cleaned.
"""

from __future__ import annotations

from django import forms
from django.utils.html import strip_tags
from django.utils.safestring import SafeData, mark_safe


class PortalFormMixin:
    """Labels without a trailing colon, `error_summary()` for the box above the form, and model
    choices within `user`'s reach."""

    def __init__(self, *args, user=None, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user, self._narrowed = user, {}
        self.narrow_to_reach()

    def narrow_to_reach(self) -> None:
        """Each model choice with `within_reach` narrowed once (again if it was replaced)."""
        if getattr(self, "user", None) is None:
            return
        for name, field in self.fields.items():
            queryset = getattr(field, "queryset", None)
            if queryset is None or not hasattr(queryset, "within_reach"):
                continue
            if self._narrowed.get(name) is not queryset:
                field.queryset = queryset.within_reach(self.user)
                self._narrowed[name] = field.queryset

    def __getitem__(self, name):
        self.narrow_to_reach()
        return super().__getitem__(name)

    def full_clean(self):
        self.narrow_to_reach()
        super().full_clean()

    def error_summary(self) -> list[dict[str, str]]:
        """Every error as {anchor, label, message}: the summary links each one to its field."""
        summary = [{"anchor": "", "label": "", "message": str(e)} for e in self.non_field_errors()]
        for name, errors in self.errors.items():
            if name == forms.forms.NON_FIELD_ERRORS:
                continue
            bound = self[name]
            anchor = _first_input_id(bound)
            for error in errors:
                # The summary item is itself a link: a message with a link of its own (shown in
                # full next to the field) is summarised as its text, never a link in a link.
                safe = anchor and isinstance(error, SafeData)
                message = mark_safe(strip_tags(error)) if safe else error  # noqa: S308 - was safe
                summary.append({"anchor": anchor, "label": str(bound.label), "message": message})
        return summary


def _first_input_id(bound) -> str:
    """The id the summary links to: the field's input, or a radio or checkbox group's first one.

    Django gives a group no id for its label (it is a fieldset's legend), hence the first choice.
    """
    if bound.id_for_label:
        return bound.id_for_label
    for choice in bound.subwidgets:
        if choice.id_for_label:
            return choice.id_for_label
    return bound.auto_id or ""


class PortalForm(PortalFormMixin, forms.Form):
    pass


class PortalModelForm(PortalFormMixin, forms.ModelForm):
    pass


# The largest text file (a PEM, say) a form reads.
TEXT_UPLOAD_MAX_BYTES = 1024 * 1024


def read_text_upload(upload, *, limit: int = TEXT_UPLOAD_MAX_BYTES) -> str:
    """An uploaded text file (a PEM, say) as a string; ValidationError when it is not text."""
    if upload.size > limit:
        raise forms.ValidationError(
            f"The file is larger than {limit // 1024} KiB: is it the right one?"
        )
    try:
        return upload.read().decode("utf-8")
    except UnicodeDecodeError:
        raise forms.ValidationError(
            "The file is not text: upload the PEM file, not a DER or PFX file."
        ) from None
