module github.com/kdefer/kdefer/cmd/kdefer

go 1.26

require github.com/kdefer/kdefer v0.0.0

replace github.com/kdefer/kdefer => ../..
