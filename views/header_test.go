package views_test

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/hubjobs/hubjobs/views"
)

func TestHeader_NameOnceWithRoles(t *testing.T) {
	tests := []struct {
		name      string
		user      views.User
		wantRoles string // "" = no roles element
	}{
		{name: "OneRole", user: views.User{Name: "Otto Operator", Roles: []string{"operator"}}, wantRoles: "operator"},
		{name: "SeveralRoles", user: views.User{Name: "Ada Admin", Roles: []string{"admin", "auditor"}}, wantRoles: "admin, auditor"},
		{name: "NameLikeARole", user: views.User{Name: "viewer", Roles: []string{"viewer"}}, wantRoles: "viewer"},
		{name: "NoRoles", user: views.User{Name: "Nora Nobody"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := layout()
			l.User = &tt.user
			d := render(t, views.Page(l))
			who := d.Find("header.top .who")
			if got := strings.TrimSpace(who.Find("#user-name").Text()); got != tt.user.Name {
				t.Errorf("#user-name = %q, want %q", got, tt.user.Name)
			}
			if n := d.Find("#user-name").Length(); n != 1 {
				t.Errorf("%d #user-name elements, want 1", n)
			}
			// The name appears once in the visible header; the roles
			// element holds the roles only.
			visible := who.Clone()
			visible.Find(".visually-hidden, form").Remove()
			if n := strings.Count(visible.Text(), tt.user.Name); n != 1+strings.Count(tt.wantRoles, tt.user.Name) {
				t.Errorf("name %q appears %d times in the header %q", tt.user.Name, n, strings.Join(strings.Fields(visible.Text()), " "))
			}
			roles := d.Find("#user-roles")
			if tt.wantRoles == "" {
				if roles.Length() != 0 {
					t.Errorf("roles element %q for a user without roles", roles.Text())
				}
				return
			}
			if got := strings.TrimSpace(roles.Text()); got != tt.wantRoles {
				t.Errorf("#user-roles = %q, want %q", got, tt.wantRoles)
			}
			// A screen reader hears one sentence.
			heard := who.Clone()
			heard.Find("form").Remove()
			if got, want := strings.Join(strings.Fields(heard.Text()), " "), "Signed in as "+tt.user.Name+" with the roles "+tt.wantRoles; got != want {
				t.Errorf("header reads %q, want %q", got, want)
			}
		})
	}
}

func TestPage_LinksTheFavicon(t *testing.T) {
	l := layout()
	l.Assets.Icon = "/static/favicon.0123456789ab.svg"
	d := render(t, views.Page(l))
	icon := d.Find(`head link[rel="icon"]`)
	if href, _ := icon.Attr("href"); icon.Length() != 1 || href != l.Assets.Icon {
		t.Errorf("icon links %d, href %q; want one to %q", icon.Length(), href, l.Assets.Icon)
	}
	if typ, _ := icon.Attr("type"); typ != "image/svg+xml" {
		t.Errorf("icon type %q", typ)
	}
}

func TestJobID_WrapsOnlyAfterSeparators(t *testing.T) {
	tests := []struct {
		id   string
		want []string // the text between <wbr> break points
	}{
		{id: "hj-abc123-w2-1", want: []string{"hj-", "abc123-", "w2-", "1"}},
		{id: "nightly_reboot_2026", want: []string{"nightly_", "reboot_", "2026"}},
		{id: "5f0c2a9e1b7d4e3f", want: []string{"5f0c2a9e1b7d4e3f"}},
		{id: "trailing-", want: []string{"trailing-"}},
		{id: "--x", want: []string{"-", "-", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			var b strings.Builder
			if err := views.JobID(tt.id).Render(t.Context(), &b); err != nil {
				t.Fatal(err)
			}
			html := b.String()
			inner := strings.TrimSuffix(strings.TrimPrefix(html, `<span class="job-id">`), `</span>`)
			if got := strings.Split(inner, "<wbr>"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("JobID(%q) = %s, want segments %q", tt.id, html, tt.want)
			}
			d, err := goquery.NewDocumentFromReader(strings.NewReader(html))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Text(); got != tt.id {
				t.Errorf("text %q, want the id unchanged %q", got, tt.id)
			}
		})
	}
}

func TestJobsTable_IDsAreNotBrokenMidID(t *testing.T) {
	d := render(t, views.JobsTable(views.JobList{Hub: "prod", Rows: []views.JobRow{{Hub: "prod", ID: "hj-abc123-w2-1", Status: "running"}}}))
	a := d.Find(`tr[data-job-id="hj-abc123-w2-1"] td.job-cell a`)
	if got := strings.TrimSpace(a.Text()); got != "hj-abc123-w2-1" {
		t.Errorf("link text %q", got)
	}
	if title, _ := a.Attr("title"); title != "hj-abc123-w2-1" {
		t.Errorf("link title %q, want the whole id", title)
	}
	if a.Find("span.job-id wbr").Length() != 3 {
		t.Errorf("want 3 break points (after each '-') in %s", a.Text())
	}
}
