"""The public report pages, rendered on the server in zh-CN (default) or English.

Plain HTML forms, no script at all: the page works on any phone browser, and under the hub's
strict content security policy (no inline script or style; the stylesheet is a file). The photo
input asks the phone for its rear camera (``capture="environment"``). Every value written into
a page is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from importlib import resources
from urllib.parse import quote

from gridwarden.hub.reports.categories import CategoryEntry

LANGUAGES = ("zh-CN", "en")

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "街面问题上报",
        "point": "上报点",
        "category": "问题类型",
        "photo": "拍照（可选）",
        "photo_hint": "点此用手机拍摄现场照片，JPEG 或 PNG，最大 {mb} MB。",
        "note": "补充说明（可选，最多 {n} 字）",
        "contact": "联系方式（可选，仅用于回访）",
        "submit": "提交",
        "other_lang": "English",
        "thanks": "感谢您的上报！",
        "joined": "该位置的同类问题已在处理中，您的上报已合并到案件 #{id}。",
        "opened": "已生成案件 #{id}。",
        "status_link": "查看处理进度",
        "keep_link": "请保存此链接，随时查看处理进度。",
        "status_title": "案件 #{id} 处理进度",
        "state": "状态",
        "reported_at": "上报时间",
        "updated_at": "最近更新",
        "note_from_centre": "处理说明",
        "unknown_point": "未找到该上报点，请确认二维码是否完整。",
        "unknown_token": "未找到该进度链接。",
        "refused": "无法提交：{why}",
        "again": "返回重新填写",
        "state.new": "已受理，待审核",
        "state.in_review": "审核中",
        "state.confirmed": "已立案，待派遣",
        "state.dispatched": "已派遣，处理中",
        "state.resolved": "已处理，待核查",
        "state.closed": "已结案",
        "state.rejected": "经核查不予立案",
        "why.rate_client": "您提交得太频繁，请 {wait} 后再试。",
        "why.rate_point": "该上报点近期上报过多，请 {wait} 后再试。",
        "why.bad_photo": "照片无法识别（{detail}），请重新拍摄。",
        "why.too_large": "照片或内容过大，照片最大 {mb} MB。",
        "why.note_too_long": "补充说明过长，最多 {n} 字。",
        "why.contact_too_long": "联系方式过长。",
        "why.unknown_category": "请选择问题类型。",
        "why.bad_form": "表单内容不完整，请重新填写。",
        "why.busy": "系统繁忙，请稍后再试。",
        "minutes": "{n} 分钟",
        "seconds": "{n} 秒",
    },
    "en": {
        "title": "Report a street problem",
        "point": "Point",
        "category": "What is the problem?",
        "photo": "Photo (optional)",
        "photo_hint": "Tap to take a photo with your phone; JPEG or PNG, at most {mb} MB.",
        "note": "Note (optional, at most {n} characters)",
        "contact": "Contact (optional, only to follow up)",
        "submit": "Send",
        "other_lang": "中文",
        "thanks": "Thank you for your report!",
        "joined": "The same problem here is already being handled; your report joined case #{id}.",
        "opened": "Case #{id} was opened.",
        "status_link": "See the progress",
        "keep_link": "Keep this link to check the progress at any time.",
        "status_title": "Case #{id}: progress",
        "state": "State",
        "reported_at": "Reported",
        "updated_at": "Last update",
        "note_from_centre": "Note from the command centre",
        "unknown_point": "This report point does not exist; please check the QR code.",
        "unknown_token": "This progress link does not exist.",
        "refused": "Not sent: {why}",
        "again": "Back to the form",
        "state.new": "Received, waiting for review",
        "state.in_review": "Being reviewed",
        "state.confirmed": "Accepted, waiting for an officer",
        "state.dispatched": "An officer is on the way",
        "state.resolved": "Handled, being checked",
        "state.closed": "Closed",
        "state.rejected": "Checked: no case",
        "why.rate_client": "you have sent several reports just now; please try again in {wait}.",
        "why.rate_point": "this point has had many reports just now; please try again in {wait}.",
        "why.bad_photo": "the photo cannot be read ({detail}); please take it again.",
        "why.too_large": "the photo or form is too large; photos up to {mb} MB.",
        "why.note_too_long": "the note is too long; at most {n} characters.",
        "why.contact_too_long": "the contact is too long.",
        "why.unknown_category": "please choose what the problem is.",
        "why.bad_form": "the form is incomplete; please fill it in again.",
        "why.busy": "the system is busy; please try again shortly.",
        "minutes": "{n} min",
        "seconds": "{n} s",
    },
}


def pick_language(query_lang: str | None, accept_language: str | None) -> str:
    """``?lang=`` if it names a language we have, else English only when the browser prefers
    it over Chinese, else zh-CN (the district's language)."""
    if query_lang in LANGUAGES:
        return query_lang
    header = (accept_language or "").lower()[:200]
    first = header.split(",", 1)[0].strip()
    return "en" if first.startswith("en") else "zh-CN"


def t(lang: str, key: str, **values: object) -> str:
    return TEXT[lang][key].format(**values)


def wait_text(lang: str, seconds: float) -> str:
    if seconds >= 90:
        return t(lang, "minutes", n=int(seconds // 60 + 1))
    return t(lang, "seconds", n=max(int(seconds + 0.999), 1))


def stylesheet() -> str:
    return resources.files("gridwarden.hub.reports").joinpath("static/report.css").read_text(encoding="utf-8")


def _page(lang: str, title: str, body: str, *, other_lang_href: str | None = None) -> str:
    switch = (
        f'<p class="lang"><a href="{escape(other_lang_href)}">{escape(t(lang, "other_lang"))}</a></p>'
        if other_lang_href
        else ""
    )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="stylesheet" href="/r/static/report.css"></head>'
        f"<body><main>{switch}{body}</main></body></html>"
    )


@dataclass(frozen=True)
class FormLimits:
    max_photo_mb: int
    max_note_chars: int


def report_form(
    lang: str,
    *,
    point_id: str,
    description: str,
    categories: tuple[CategoryEntry, ...],
    limits: FormLimits,
    error: str | None = None,
) -> str:
    other = "en" if lang == "zh-CN" else "zh-CN"
    action = f"/r/{quote(point_id)}?lang={lang}"
    choices = "".join(
        f'<label class="choice"><input type="radio" name="category" value="{escape(c.code)}" required>'
        f"{escape(c.name_zh if lang == 'zh-CN' else c.name_en)}</label>"
        for c in categories
    )
    err = f'<p class="error" role="alert" id="error">{escape(error)}</p>' if error else ""
    body = (
        f"<h1>{escape(t(lang, 'title'))}</h1>"
        f'<p class="where">{escape(t(lang, "point"))} <strong id="point-id">{escape(point_id)}</strong>'
        f"{(' · ' + escape(description)) if description else ''}</p>{err}"
        f'<form method="post" action="{escape(action)}" enctype="multipart/form-data">'
        f"<fieldset><legend>{escape(t(lang, 'category'))}</legend>{choices}</fieldset>"
        f'<fieldset><label for="photo">{escape(t(lang, "photo"))}</label>'
        '<input id="photo" name="photo" type="file" accept="image/jpeg,image/png,image/*" capture="environment">'
        f'<p class="hint">{escape(t(lang, "photo_hint", mb=limits.max_photo_mb))}</p></fieldset>'
        f'<fieldset><label for="note">{escape(t(lang, "note", n=limits.max_note_chars))}</label>'
        f'<textarea id="note" name="note" rows="3" maxlength="{limits.max_note_chars}"></textarea></fieldset>'
        f'<fieldset><label for="contact">{escape(t(lang, "contact"))}</label>'
        '<input id="contact" name="contact" type="text" maxlength="64" autocomplete="tel"></fieldset>'
        f'<button type="submit">{escape(t(lang, "submit"))}</button></form>'
    )
    return _page(lang, t(lang, "title"), body, other_lang_href=f"/r/{quote(point_id)}?lang={other}")


def message_page(lang: str, text: str, *, back_href: str | None = None) -> str:
    back = f'<p><a href="{escape(back_href)}">{escape(t(lang, "again"))}</a></p>' if back_href else ""
    return _page(lang, t(lang, "title"), f'<p class="error" role="alert" id="error">{escape(text)}</p>{back}')


def receipt_page(lang: str, *, case_id: int, joined: bool, status_url: str) -> str:
    body = (
        f"<h1>{escape(t(lang, 'thanks'))}</h1>"
        f'<p class="ok" id="receipt" data-case-id="{case_id}">'
        f"{escape(t(lang, 'joined' if joined else 'opened', id=case_id))}</p>"
        f'<p><a id="status-link" href="{escape(status_url)}">{escape(t(lang, "status_link"))}</a></p>'
        f'<p class="hint">{escape(t(lang, "keep_link"))}</p>'
    )
    return _page(lang, t(lang, "thanks"), body)


def status_page(
    lang: str,
    *,
    case_id: int,
    state: str,
    category_name: str,
    reported_at: datetime,
    updated_at: datetime,
    note: str | None,
    other_lang_href: str,
) -> str:
    def fmt(value: datetime) -> str:
        return value.astimezone().strftime("%Y-%m-%d %H:%M")

    note_html = f"<dt>{escape(t(lang, 'note_from_centre'))}</dt><dd>{escape(note)}</dd>" if note else ""
    body = (
        f"<h1>{escape(t(lang, 'status_title', id=case_id))}</h1><dl>"
        f"<dt>{escape(t(lang, 'state'))}</dt>"
        f'<dd id="case-state" data-state="{escape(state)}">{escape(t(lang, "state." + state))}</dd>'
        f"<dt>{escape(t(lang, 'category'))}</dt><dd>{escape(category_name)}</dd>"
        f"<dt>{escape(t(lang, 'reported_at'))}</dt><dd>{fmt(reported_at)}</dd>"
        f"<dt>{escape(t(lang, 'updated_at'))}</dt><dd>{fmt(updated_at)}</dd>{note_html}</dl>"
    )
    return _page(lang, t(lang, "status_title", id=case_id), body, other_lang_href=other_lang_href)
