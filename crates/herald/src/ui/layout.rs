//! The frame of every page: the header with the account and its sections, the sign-out
//! form, and the page's own content.

use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::headers::Framable;
use super::session::Visitor;

/// The sections of the header.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Endpoints,
    Calls,
    Events,
    Settings,
    Accounts,
}

/// A whole page for a signed-in visitor.
pub fn page(visitor: &Visitor, section: Section, title: &str, content: Markup) -> Response {
    let content = PreEscaped(content.into_string());
    let session = &visitor.session;
    let tab = |this: Section, href: &str, label: &str| {
        html! {
            a href=(href) class=[(section == this).then_some("active")] { (label) }
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body {
                header.top {
                    a.brand href="/ui" { "Herald" }
                    nav {
                        @if visitor.account.is_some() {
                            (tab(Section::Endpoints, "/ui", "Endpoints"))
                            (tab(Section::Calls, "/ui/tasks", "Calls"))
                            (tab(Section::Events, "/ui/events", "Event types"))
                            (tab(Section::Settings, "/ui/settings", "Settings"))
                        }
                        @if session.support {
                            (tab(Section::Accounts, "/ui/accounts", "Accounts"))
                        }
                    }
                    div.who {
                        @if let Some(account) = &visitor.account {
                            span.account title=(account.login) { (account.name) }
                        }
                        @if session.support {
                            span.badge { "support" }
                        }
                        @if !visitor.may_change() {
                            span.badge.view { "view only" }
                        }
                        @if !session.portal {
                            form.inline method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (content) }
            }
        }
    };
    let mut response = markup.into_response();
    if session.portal {
        response.extensions_mut().insert(Framable);
    }
    response
}

/// A page outside a session: sign-in, errors.
pub fn bare(title: &str, message: &str) -> Markup {
    shell(
        title,
        html! {
            h1 { (title) }
            p { (message) }
            p { a href="/ui" { "Back to the dashboard" } }
        },
    )
}

/// The document around a page without the header.
pub fn shell(title: &str, content: Markup) -> Markup {
    let content = PreEscaped(content.into_string());
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, false))
            body.plain {
                main.narrow { (content) }
            }
        }
    }
}

/// A page's `<head>`: its title, the stylesheet, and the script of comforts where the page
/// has use for it.
fn head(title: &str, script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Herald" }
            link rel="stylesheet" href="/ui/assets/herald.css";
            @if script { script src="/ui/assets/herald.js" defer {} }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(visitor: &Visitor) -> Markup {
    html! { input type="hidden" name="csrf" value=(visitor.session.csrf); }
}
