"""The pages: the newest entries (and a form to post one), a user's feed, a tag, an entry."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .forms import CommentForm, EntryForm, LikeForm
from .models import Entry, Like

PAGE = 20


def home(request: HttpRequest) -> HttpResponse:
    form = EntryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        entry = form.save()
        return redirect("feed:entry", pk=entry.pk)
    newest = Entry.objects.order_by("-published")[:PAGE]
    return render(request, "feed/home.html", {"entries": newest, "form": form})


def user_feed(request: HttpRequest, user: str) -> HttpResponse:
    entries = Entry.objects.filter(user=user).order_by("-published")
    page = Paginator(entries, PAGE).get_page(request.GET.get("page"))
    return render(request, "feed/list.html", {"title": user, "page": page})


def tag(request: HttpRequest, tag: str) -> HttpResponse:
    entries = Entry.objects.filter(tags=tag).order_by("-published")
    page = Paginator(entries, PAGE).get_page(request.GET.get("page"))
    return render(request, "feed/list.html", {"title": f"#{tag}", "page": page})


def entry(request: HttpRequest, pk: str) -> HttpResponse:
    item = get_object_or_404(Entry, pk=pk)
    context = {
        "entry": item,
        "likes": item.likes.order_by("created"),
        "comments": item.comments.order_by("created"),
        "like_form": LikeForm(),
        "comment_form": CommentForm(),
    }
    return render(request, "feed/entry.html", context)


@require_POST
def like(request: HttpRequest, pk: str) -> HttpResponse:
    item = get_object_or_404(Entry, pk=pk)
    form = LikeForm(request.POST)
    if form.is_valid():
        Like.objects.get_or_create(entry=item, user=form.cleaned_data["user"])
    return redirect("feed:entry", pk=item.pk)


@require_POST
def comment(request: HttpRequest, pk: str) -> HttpResponse:
    item = get_object_or_404(Entry, pk=pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        form.instance.entry = item
        form.save()
    return redirect("feed:entry", pk=item.pk)
