// Package static holds the portal's browser assets (htmx, CSS, the portal's
// own small script, the favicon), embedded in the binary and served under content-hashed
// names so that browsers may cache them forever: a changed file gets a new
// URL. It imports nothing internal.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed app.css app.js htmx.min.js favicon.svg
var files embed.FS

// Prefix is where the assets are mounted.
const Prefix = "/static/"

// asset is one embedded file with its precomputed hashed name and gzip body.
type asset struct {
	name        string // app.css
	hashedName  string // app.1a2b3c4d5e.css
	contentType string
	body        []byte
	gzipped     []byte
	etag        string
}

var (
	byName  = map[string]*asset{} // plain and hashed names both resolve
	ordered []*asset
)

func init() {
	entries, err := files.ReadDir(".")
	if err != nil {
		panic(err) // embedded at build time: cannot fail at run time
	}
	for _, e := range entries {
		body, err := files.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])[:12]
		ext := path.Ext(e.Name())
		a := &asset{
			name:        e.Name(),
			hashedName:  strings.TrimSuffix(e.Name(), ext) + "." + hash + ext,
			contentType: contentType(ext),
			body:        body,
			gzipped:     gzipBytes(body),
			etag:        `"` + hash + `"`,
		}
		byName[a.name] = a
		byName[a.hashedName] = a
		ordered = append(ordered, a)
	}
}

func contentType(ext string) string {
	switch ext {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// URL returns the cache-busted URL of an embedded file, e.g. URL("app.css") =
// "/static/app.1a2b3c4d5e6f.css". It panics for a name that is not embedded:
// that is a programming error caught by the first test that renders a page.
func URL(name string) string {
	a, ok := byName[name]
	if !ok || a.name != name {
		panic("static: no embedded file " + name)
	}
	return Prefix + a.hashedName
}

// Size reports the bytes a browser downloads for name: gzipped when gzip is
// true. Benchmarks use it to total a first page load.
func Size(name string, gzip bool) int {
	a := byName[name]
	if a == nil {
		return 0
	}
	if gzip {
		return len(a.gzipped)
	}
	return len(a.body)
}

// Has reports whether r names an embedded file (plain or hashed name).
func Has(r *http.Request) bool { return lookup(r) != nil }

func lookup(r *http.Request) *asset {
	if r.URL.RawPath != "" && r.URL.RawPath != r.URL.Path {
		return nil // an escaped path never names an embedded file
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		return nil
	}
	return byName[name]
}

// Handler serves the embedded files. Only exact embedded names resolve, so
// traversal ("..", encoded slashes, backslashes) cannot reach anything else: it
// is a 404. Hashed names are immutable for a year; plain names revalidate.
// Mount it with the Prefix stripped or not: both work.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a := lookup(r)
		if a == nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		h.Add("Vary", "Accept-Encoding")
		if strings.HasSuffix(r.URL.Path, "/"+a.hashedName) {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := a.body
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			body = a.gzipped
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(body)
	})
}

func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			q, err := strconv.ParseFloat(v, 64)
			return err == nil && q > 0
		}
		return true
	}
	return false
}
