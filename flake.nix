{
  description = "paxos-shm: Paxos across processes over POSIX shared memory";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";
  inputs.flake-utils.url = "github:numtide/flake-utils";

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachSystem [ "x86_64-linux" "aarch64-linux" ] (system:
      let
        pkgs = nixpkgs.legacyPackages.${system};
        buildInputs = with pkgs; [ liburcu cmocka sqlite ];
        nativeBuildInputs = with pkgs; [ cmake pkg-config ];
        paxos-shm = pkgs.stdenv.mkDerivation {
          pname = "paxos-shm";
          version = "0.1.0";
          src = ./.;
          inherit buildInputs nativeBuildInputs;
          cmakeFlags = [ "-DCMAKE_BUILD_TYPE=Release" ];
          doCheck = true;
          checkPhase = "ctest --output-on-failure -j2";
          installPhase = ''
            mkdir -p $out/bin
            cp paxos-shm $out/bin/ 2>/dev/null || true
            cp bench/ring bench/throughput $out/bin/ 2>/dev/null || true
          '';
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
