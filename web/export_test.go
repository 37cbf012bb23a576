package web_test

import (
	"strings"

	"github.com/PuerkitoBio/goquery"

	"github.com/hubjobs/hubjobs/web"
)

var webNextAllowed = web.NextAllowed

type goquerySelection = goquery.Selection

func goqueryDoc(s string) (*goquery.Document, error) {
	return goquery.NewDocumentFromReader(strings.NewReader(s))
}
