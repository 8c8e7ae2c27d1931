//go:build !unix

package umh_test

func helperMain(string, []string) int { return 1 }
