package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheckExitCodes(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	closed := closedAddr(t)

	tests := []struct {
		name   string
		status int
		args   []string
		env    env
		want   int
	}{
		{"ready", http.StatusOK, []string{"--url", srv.URL + "/readyz"}, nil, 0},
		{"draining", http.StatusServiceUnavailable, []string{"--url", srv.URL + "/readyz"}, nil, 1},
		{"redirect is not healthy", http.StatusFound, []string{"--url", srv.URL + "/readyz"}, nil, 1},
		{"nothing listening", http.StatusOK, []string{"--url", "http://" + closed + "/readyz"}, nil, 1},
		{"port from HUBJOBS_LISTEN", http.StatusOK, nil, env{"HUBJOBS_LISTEN": "0.0.0.0:" + port(t, srv.URL)}, 0},
		{"stray argument", http.StatusOK, []string{"now"}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status = tt.status
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"healthcheck"}, tt.args...), tt.env.get, &stdout, &stderr)
			if got := exitCode(err, &stderr); got != tt.want {
				t.Errorf("exit code %d, want %d (stdout %q, stderr %q)", got, tt.want, stdout.String(), stderr.String())
			}
		})
	}
}

func TestDefaultHealthURL(t *testing.T) {
	for listen, want := range map[string]string{
		"":               "http://127.0.0.1:8080/readyz",
		"0.0.0.0:9000":   "http://127.0.0.1:9000/readyz",
		":9001":          "http://127.0.0.1:9001/readyz",
		"[::]:9002":      "http://127.0.0.1:9002/readyz",
		"10.1.2.3:9003":  "http://10.1.2.3:9003/readyz",
		"[::1]:9004":     "http://[::1]:9004/readyz",
		"not an address": "http://127.0.0.1:8080/readyz",
	} {
		if got := defaultHealthURL(listen); got != want {
			t.Errorf("defaultHealthURL(%q) = %q, want %q", listen, got, want)
		}
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func port(t *testing.T, rawURL string) string {
	t.Helper()
	return rawURL[strings.LastIndexByte(rawURL, ':')+1:]
}
