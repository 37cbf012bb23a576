package views

import "testing"

func TestErrorPageSignInLink(t *testing.T) {
	for _, tc := range []struct {
		name     string
		page     ErrorPage
		signedIn bool
		want     string
	}{
		{"expired sign-in starts again where auth says", ErrorPage{Status: 400, SignIn: "/auth/login?next=%2Fhubs"}, false, "/auth/login?next=%2Fhubs"},
		{"signed-out visitor may sign in", ErrorPage{Status: 401}, false, "/auth/login"},
		{"no access: signing in again lands on the same refusal", ErrorPage{Status: 403}, false, ""},
		{"signed-in user needs no sign-in button", ErrorPage{Status: 502}, true, ""},
	} {
		if got := tc.page.SignInLink(tc.signedIn); got != tc.want {
			t.Errorf("%s: SignInLink = %q, want %q", tc.name, got, tc.want)
		}
	}
}
