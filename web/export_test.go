package web_test

import "github.com/hubjobs/hubjobs/web"

var webNextAllowed = web.NextAllowed
