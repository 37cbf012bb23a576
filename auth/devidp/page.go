package devidp

import (
	"html/template"
	"net/http"
)

type pageData struct {
	Title, Message string
	RequestID      string // login form: the pending authorization request
	Username       string
	Error          string
	Users          []User
}

// pageTemplate renders every page. The banner is part of the layout so that
// no page of this provider can be mistaken for a real sign-in.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · DEMO identity provider</title>
<style>body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}
.demo{background:#fde68a;border:2px solid #b45309;padding:.6rem;font-weight:bold}
.error{color:#b91c1c}label{display:block;margin:.6rem 0}table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left}</style></head>
<body>
<p class="demo" id="demo-banner">DEMO identity provider — for demonstrations and tests only. Never enter a real password here.</p>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .RequestID}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post">
<input type="hidden" name="request" value="{{.RequestID}}">
<label>User name <input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
<button id="submit" type="submit">Sign in</button>
<button id="cancel" type="submit" name="cancel" value="1" formnovalidate>Cancel</button>
</form>
<h2>Demo users</h2>
<table><tr><th>User name</th><th>Password</th><th>Roles</th></tr>
{{range .Users}}<tr><td>{{.Username}}</td><td>{{if eq .Password .Username}}same as user name{{else}}(set by the operator){{end}}</td><td>{{range $i, $r := .Roles}}{{if $i}}, {{end}}{{$r}}{{end}}</td></tr>
{{end}}</table>
{{end}}
</body></html>
`))

func (s *Server) page(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

func (s *Server) loginForm(w http.ResponseWriter, status int, requestID, username, errMsg string) {
	s.page(w, status, pageData{Title: "Sign in", Message: "Sign in with one of the demo accounts below.",
		RequestID: requestID, Username: username, Error: errMsg, Users: s.demoUsers()})
}

// demoUsers lists the accounts in the order they were configured.
func (s *Server) demoUsers() []User {
	out := make([]User, 0, len(s.opts.Users))
	for _, u := range s.opts.Users {
		out = append(out, s.users[u.Username])
	}
	return out
}
