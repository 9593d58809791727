// patchwork: the command-line entry point (the commands live in trainers/cli.cpp).
#include <string>
#include <vector>

#include "trainers/cli.h"

int main(int argc, char** argv) { return pw::run_cli(std::vector<std::string>(argv, argv + argc)); }
