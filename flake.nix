{
  description = "paxos-shm: Paxos across processes over POSIX shared memory";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";
  inputs.flake-utils.url = "github:numtide/flake-utils";

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachSystem [ "x86_64-linux" "aarch64-linux" ] (system:
      let
        pkgs = nixpkgs.legacyPackages.${system};
        buildInputs = with pkgs; [ liburcu cmocka sqlite zeromq ];
        nativeBuildInputs = with pkgs; [ cmake pkg-config git ];
        # The install test renders the man page (man -l, col) and runs the installed bench.
        checkInputs = with pkgs; [ man-db util-linux python3 ];
        paxos-shm = pkgs.stdenv.mkDerivation {
          pname = "paxos-shm";
          version = "0.2.0";
          src = ./.;
          inherit buildInputs nativeBuildInputs checkInputs;
          cmakeFlags = [ "-DCMAKE_BUILD_TYPE=Release" ];
          doCheck = true;
          checkPhase = "ctest --output-on-failure -j2";
          # The default installPhase runs cmake --install: bin/paxos-shm, share/man/man1,
          # libexec/paxos-shm/{ring,throughput,store_bench}.
        };
      in {
        packages.default = paxos-shm;
        packages.paxos-shm = paxos-shm;
        checks.ctest = paxos-shm;
        devShells.default = pkgs.mkShell {
          inherit buildInputs;
          nativeBuildInputs = nativeBuildInputs
            ++ (with pkgs; [ clang-tools gdb valgrind hyperfine gnuplot ]);
          shellHook = "git config core.hooksPath .githooks 2>/dev/null || true";
        };
      });
}
