"""Django's shortcuts, generic views and Paginator, unchanged, over schemaless models."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.paginator import Paginator, UnorderedObjectListWarning
from django.forms import modelform_factory
from django.http import Http404
from django.shortcuts import get_list_or_404, get_object_or_404
from django.test import RequestFactory
from django.views.generic import DetailView, ListView

import schemaless
from tests.django.blog.models import Author, Entry
from tests.django.conftest import drain

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


class EntryList(ListView):
    model = Entry
    paginate_by = 3
    ordering = ["-published"]


class UserEntries(ListView):
    paginate_by = 2

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return Entry.objects.filter(user_id=self.kwargs["user_id"]).order_by("published")


class EntryDetail(DetailView):
    model = Entry
    template_name = "blog/entry_detail.html"  # DetailView guesses names only for Django models


@pytest.fixture
def entries(databases: schemaless.Store) -> list[Entry]:
    made = [
        Entry.objects.create(user_id=7, title=f"t{i}", published=T0 + dt.timedelta(minutes=i))
        for i in range(7)
    ]
    drain()
    return made


def render(view: type, path: str = "/", **kwargs: object) -> tuple[object, str]:
    response = view.as_view()(RequestFactory().get(path), **kwargs)
    response.render()
    return response, response.content.decode()


def test_get_object_or_404(entries: list[Entry]) -> None:
    assert get_object_or_404(Entry, pk=entries[2].pk) == entries[2]
    assert get_object_or_404(Entry.objects.filter(user_id=7), pk=entries[3].pk) == entries[3]
    with pytest.raises(Http404, match="No Entry matches the given query."):
        get_object_or_404(Entry, pk=uuid.uuid4())
    assert len(get_list_or_404(Entry, user_id=7)) == 7
    with pytest.raises(Http404):
        get_list_or_404(Entry, user_id=8)


def test_list_view_paginates_an_ordered_queryset(entries: list[Entry]) -> None:
    response, content = render(EntryList, "/?page=2")
    context = response.context_data  # type: ignore[attr-defined]
    assert content == "t3;t2;t1;|page 2 of 3"
    assert context["is_paginated"] and context["page_obj"].has_next()
    assert response.template_name[-1] == "blog/entry_list.html"  # type: ignore[attr-defined]
    _, last = render(EntryList, "/?page=last")
    assert last == "t0;|page 3 of 3"
    _, by_user = render(UserEntries, "/", user_id=7)
    assert by_user == "t0;t1;|page 1 of 4"
    with pytest.raises(Http404):
        render(EntryList, "/?page=9")


def test_detail_view_finds_by_pk_or_raises_404(entries: list[Entry]) -> None:
    response, content = render(EntryDetail, pk=str(entries[1].pk))
    assert content == "t1 by 7" and response.context_data["object"] == entries[1]  # type: ignore[attr-defined]
    with pytest.raises(Http404, match="No entry found matching the query"):
        render(EntryDetail, pk=str(uuid.uuid4()))


def test_paginator_counts_through_the_index_and_slices(entries: list[Entry]) -> None:
    paginator = Paginator(Entry.objects.filter(user_id=7).order_by("-published"), 4)
    assert (paginator.count, paginator.num_pages) == (7, 2)
    page = paginator.page(2)
    assert [e.title for e in page] == ["t2", "t1", "t0"] and page.start_index() == 5
    with pytest.warns(UnorderedObjectListWarning):
        Paginator(Entry.objects.filter(user_id=7), 4)


def test_a_model_form_validates_creates_and_edits(databases: schemaless.Store) -> None:
    form_class = modelform_factory(Author, fields=["name", "email", "karma", "joined", "prefs"])
    data = {"name": "ann", "email": "", "karma": "1.50", "joined": "2020-01-02", "prefs": "{}"}
    form = form_class(data=data)
    assert form.is_valid(), form.errors
    author = form.save()
    assert databases.get(author.pk)["karma"] == __import__("decimal").Decimal("1.50")
    bad = form_class(data={**data, "name": "", "karma": "lots"})
    assert not bad.is_valid() and set(bad.errors) == {"name", "karma"}
    edit = form_class(data={**data, "name": "bea"}, instance=Author.objects.get(pk=author.pk))
    assert edit.is_valid() and edit.save().pk == author.pk
    assert databases.get(author.pk)["name"] == "bea"
    assert "tags" not in modelform_factory(Entry, exclude=[])().fields  # no form field for lists
