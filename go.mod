module github.com/kdefer/kdefer

go 1.26
