module github.com/kdefer/kdefer/cmd/kdefer

go 1.26

require (
	github.com/kdefer/kdefer v0.0.0
	github.com/spf13/cobra v1.10.2
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)

replace github.com/kdefer/kdefer => ../..
