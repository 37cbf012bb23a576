package web

import (
	"bufio"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// A streamed export must reach the browser page by page through the
// compressing writer: what the handler flushed is readable by the client
// while the handler is still waiting for its next page.
func TestCompression_FlushesStreamThrough(t *testing.T) {
	compress, err := compressResponses()
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.Use(compress)
	nextPage := make(chan struct{})
	e.GET("/export.csv", func(c echo.Context) error {
		w := c.Response()
		w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("id,status\n" + strings.Repeat("device-1,completed\n", 100)))
		if err := http.NewResponseController(w).Flush(); err != nil {
			return err
		}
		select {
		case <-nextPage:
		case <-time.After(10 * time.Second):
		}
		w.Write([]byte("device-2,failed\n"))
		return nil
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	defer close(nextPage)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/export.csv", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(zr)
	got := make(chan string, 1)
	go func() {
		if lines.Scan() {
			got <- lines.Text()
		}
	}()
	select {
	case first := <-got:
		if first != "id,status" {
			t.Errorf("first line %q", first)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the flushed first page did not reach the client while the handler waited")
	}
}
