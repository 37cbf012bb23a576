package web_test

import (
	"github.com/PuerkitoBio/goquery"

	"github.com/hubjobs/hubjobs/web"
)

var webNextAllowed = web.NextAllowed

type goquerySelection = goquery.Selection
