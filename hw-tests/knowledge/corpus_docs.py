"""The documents of the French retrieval evaluation set: a fictional commune's papers.

Each document is a file name, a format and its pages; a page is written in a tiny markup that
`make_corpus.py` renders into every format:

    # Title            heading, level 1 (## level 2, ### level 3)
    - item             list item
    | a | b | c |      table row (consecutive rows make one table; the first row is its header)
    > text             signature / right-aligned line
    any other line     one paragraph

Formats: pdf (text PDF), docx, odt, txt (pages separated by form feeds), md and html (one
page each), and the scanned ones: scan-pdf (image-only PDF, one image per page), png, jpg,
tiff (one page). Everything here is invented: the commune, its people, firms and figures.
"""

from dataclasses import dataclass, field

COMMUNE = "Saint-Aubin-sur-Loire"


@dataclass
class Doc:
    file: str
    fmt: str
    title: str
    pages: list[str]
    kind: str = ""
    date: str = ""  # ISO date of the document, for metadata only
    style: dict = field(default_factory=dict)  # rendering hints (scan noise, font...)

    @property
    def scanned(self) -> bool:
        return self.fmt in ("scan-pdf", "png", "jpg", "tiff")


HEAD = "# COMMUNE DE SAINT-AUBIN-SUR-LOIRE\nDépartement d’Indre-et-Loire — Arrondissement de Tours\n"

DOCS: list[Doc] = []


def add(*args, **kw) -> None:
    DOCS.append(Doc(*args, **kw))


# ---------------------------------------------------------------------------------------
# Restauration scolaire: tarifs 2024-2025 (PDF) and, as a distractor, 2023-2024 (DOCX)
# ---------------------------------------------------------------------------------------
add(
    "deliberation_2024-018_tarifs_restauration_scolaire.pdf", "pdf",
    "Délibération n° 2024-018 — Restauration scolaire : tarifs 2024-2025",
    [
        HEAD + """
## Extrait du registre des délibérations du conseil municipal
Séance du 14 mars 2024 — Délibération n° 2024-018
Objet : Restauration scolaire — fixation des tarifs pour l’année scolaire 2024-2025
L’an deux mille vingt-quatre, le quatorze mars à vingt heures trente, le conseil municipal de la commune de Saint-Aubin-sur-Loire, dûment convoqué le 7 mars 2024, s’est réuni en séance publique à la mairie, salle du conseil, sous la présidence de Mme Hélène Marchand, maire.
Nombre de conseillers en exercice : 23 — présents : 19 — pouvoirs : 4 — votants : 23.
Présents : Mme Hélène Marchand, M. Philippe Garnier, Mme Sophie Lebrun, M. Karim Benali, Mme Monique Perrot, M. Julien Roussel, Mme Agnès Fontaine, M. Thierry Vasseur, Mme Nadia Ferreira, M. Gérard Poulain, Mme Claire Dumont, M. Antoine Lefèvre, Mme Isabelle Caron, M. Olivier Masson, Mme Laure Gautier, M. Bruno Chevalier, Mme Céline Aubry, M. Denis Royer, Mme Françoise Colin.
Pouvoirs : M. Marc Giraud à M. Philippe Garnier ; Mme Élodie Barbier à Mme Sophie Lebrun ; M. Yves Morin à Mme Hélène Marchand ; Mme Anne Lemoine à M. Karim Benali.
Secrétaire de séance : M. Julien Roussel.
Vu le Code général des collectivités territoriales, et notamment son article L. 2121-29 ;
Vu le Code de l’éducation, et notamment ses articles R. 531-52 et R. 531-53 relatifs aux prix de la restauration scolaire fournie aux élèves de l’enseignement public ;
Vu la délibération n° 2023-021 du 16 mars 2023 fixant les tarifs pour l’année scolaire 2023-2024 ;
Vu l’avis de la commission « Enfance, jeunesse et affaires scolaires » réunie le 29 février 2024 ;
""",
        """
## Exposé
Mme Sophie Lebrun, adjointe déléguée aux affaires scolaires, rappelle que le restaurant scolaire des Tilleuls sert en moyenne 410 repas par jour aux élèves des écoles maternelle et élémentaire. Les repas sont préparés sur place par l’équipe municipale de restauration, à partir de produits frais et de saison, avec un approvisionnement local privilégié.
Le coût de revient d’un repas (denrées, personnel, fluides, entretien) s’établit à 8,74 € pour l’exercice 2023. La hausse du prix des denrées alimentaires constatée sur le marché de fourniture (+6,2 %) conduit la commission à proposer une revalorisation modérée des tarifs, la tranche la plus modeste restant à 1 € dans le cadre du dispositif de tarification sociale soutenu par l’État.
## Grille tarifaire applicable au 1er septembre 2024
| Tranche | Quotient familial (QF) | Prix du repas |
| A | QF inférieur ou égal à 500 | 1,00 € |
| B | QF de 501 à 900 | 2,45 € |
| C | QF de 901 à 1 300 | 3,30 € |
| D | QF supérieur à 1 300 | 3,95 € |
| Hors commune | Enfant non domicilié à Saint-Aubin | 5,20 € |
| Adulte | Enseignant, personnel, intervenant | 6,10 € |
Le quotient familial retenu est celui communiqué par la caisse d’allocations familiales au 1er juillet ; à défaut de justificatif, la tranche D est appliquée.
L’aide de l’État de 3 € par repas facturé 1 € ou moins est perçue au titre de la tranche A.
""",
        """
## Dispositions particulières
Enfant bénéficiant d’un projet d’accueil individualisé (PAI) avec panier-repas fourni par la famille : 1,15 € par jour, correspondant aux frais de garde et de surveillance.
Repas pris sans réservation préalable sur le portail famille : majoration de 2,00 € par repas.
Absence non signalée avant 9 heures le jour même : le repas est facturé, sauf présentation d’un certificat médical dans les 48 heures.
## Décision
Le conseil municipal, après en avoir délibéré, par 21 voix pour et 2 abstentions (M. Thierry Vasseur, Mme Nadia Ferreira) :
- APPROUVE la grille tarifaire de la restauration scolaire présentée ci-dessus, applicable à compter du 1er septembre 2024 ;
- DIT que les recettes correspondantes seront imputées au budget principal, chapitre 70 ;
- AUTORISE Mme le maire à signer tout document s’y rapportant.
Fait et délibéré les jour, mois et an susdits. Pour extrait conforme.
> Le maire, Hélène Marchand
Acte transmis en préfecture le 18 mars 2024 et publié le 19 mars 2024. La présente délibération peut faire l’objet d’un recours devant le tribunal administratif d’Orléans dans un délai de deux mois à compter de sa publication.
""",
    ],
    kind="délibération", date="2024-03-14",
)

add(
    "deliberation_2023-021_tarifs_restauration_scolaire.docx", "docx",
    "Délibération n° 2023-021 — Restauration scolaire : tarifs 2023-2024",
    [
        """# COMMUNE DE SAINT-AUBIN-SUR-LOIRE
## Extrait du registre des délibérations du conseil municipal
Séance du 16 mars 2023 — Délibération n° 2023-021
Objet : Restauration scolaire - tarifs de l'année scolaire 2023-2024
L'an deux mille vingt-trois, le seize mars à vingt heures trente, le conseil municipal, régulièrement convoqué, s'est réuni à la mairie sous la présidence de Mme Hélène Marchand, maire.
Conseillers en exercice : 23 - présents : 20 - pouvoirs : 2 - votants : 22.
Secrétaire de séance : Mme Claire Dumont.
Vu le Code général des collectivités territoriales ;
Vu le Code de l'éducation, articles R. 531-52 et R. 531-53 ;
Vu la convention signée avec l'État le 2 février 2023 au titre de la tarification sociale des cantines ;
Mme Sophie Lebrun, adjointe aux affaires scolaires, présente le bilan de l'année écoulée : le coût de revient d'un repas servi au restaurant scolaire des Tilleuls est de 8,12 €. La commune ayant adhéré au dispositif de la « cantine à 1 € », une tarification progressive en quatre tranches de quotient familial est proposée pour la rentrée de septembre 2023.
""",
        """## Tarifs applicables du 1er septembre 2023 au 31 août 2024
| Tranche | Quotient familial | Prix du repas |
| A | jusqu'à 500 | 1,00 € |
| B | de 501 à 900 | 2,30 € |
| C | de 901 à 1 300 | 3,10 € |
| D | au-delà de 1 300 | 3,75 € |
| Enfants extérieurs à la commune | - | 4,90 € |
| Adultes (enseignants, agents, intervenants) | - | 5,80 € |
Repas non réservé sur le portail famille : majoration de 1,50 € par repas.
Panier-repas (PAI) : 1,10 € par jour.
Le conseil municipal, après en avoir délibéré, à l'unanimité des votants :
- FIXE les tarifs de la restauration scolaire comme indiqué ci-dessus ;
- CHARGE Mme le maire de l'exécution de la présente délibération.
> Pour extrait conforme, le maire, Hélène Marchand
Transmis au contrôle de légalité le 20 mars 2023.
""",
    ],
    kind="délibération", date="2023-03-16",
)

# ---------------------------------------------------------------------------------------
# Arrêtés de circulation: rue des Tanneurs (scanned, November) and rue du Moulin (text)
# ---------------------------------------------------------------------------------------
add(
    "arrete_2024-112_circulation_rue_des_tanneurs.pdf", "scan-pdf",
    "Arrêté n° 2024-112 — Circulation rue des Tanneurs",
    [
        """RÉPUBLIQUE FRANÇAISE
# COMMUNE DE SAINT-AUBIN-SUR-LOIRE
## ARRÊTÉ MUNICIPAL N° 2024-112
portant réglementation temporaire de la circulation et du stationnement rue des Tanneurs
Le Maire de la commune de Saint-Aubin-sur-Loire,
Vu le Code général des collectivités territoriales, et notamment ses articles L. 2212-1, L. 2212-2 et L. 2213-1 ;
Vu le Code de la route, et notamment ses articles R. 411-8, R. 411-25 et R. 417-10 ;
Vu l’instruction interministérielle sur la signalisation routière ;
Vu la demande présentée le 9 octobre 2024 par l’entreprise SOGETRA TP, 14 rue de l’Industrie à Tours, chargée par la communauté de communes des travaux de réhabilitation du réseau d’assainissement ;
Considérant qu’il convient d’assurer la sécurité des usagers et des personnels de chantier pendant la durée des travaux ;
## ARRÊTE
Article 1 : Du lundi 4 novembre 2024 à 7 h 30 au vendredi 29 novembre 2024 à 18 h, la circulation de tous les véhicules est interdite rue des Tanneurs, dans sa section comprise entre la rue Pasteur et la place du Lavoir.
Article 2 : Pendant cette période, une déviation est mise en place par la rue Pasteur, l’avenue de la Gare et le boulevard des Mariniers. L’accès des riverains, des véhicules de secours et de la collecte des déchets est maintenu en dehors des heures de chantier.
""",
        """Article 3 : Pendant la même période, le stationnement est interdit et considéré comme gênant des deux côtés de la rue des Tanneurs. Les véhicules en infraction feront l’objet d’une mise en fourrière, aux frais de leur propriétaire.
Article 4 : La signalisation réglementaire, conforme à l’instruction interministérielle, sera mise en place et entretenue par l’entreprise SOGETRA TP, qui en assume la responsabilité pendant toute la durée des travaux.
Article 5 : Les piétons emprunteront le trottoir côté pair, protégé par des barrières. L’accès aux commerces reste assuré.
Article 6 : Toute infraction au présent arrêté sera constatée et poursuivie conformément aux lois et règlements en vigueur.
Article 7 : Monsieur le Directeur général des services, Monsieur le Commandant de la brigade de gendarmerie et le policier municipal sont chargés, chacun en ce qui le concerne, de l’exécution du présent arrêté, qui sera affiché sur place et en mairie.
Fait à Saint-Aubin-sur-Loire, le 21 octobre 2024.
> Le Maire, Hélène Marchand
Le présent arrêté peut faire l’objet d’un recours devant le tribunal administratif d’Orléans dans un délai de deux mois à compter de sa publication.
Ampliation : SOGETRA TP ; gendarmerie ; services techniques ; SDIS 37 ; communauté de communes Loire et Coteaux.
""",
    ],
    kind="arrêté", date="2024-10-21", style={"seed": 112, "angle": 0.7},
)

add(
    "arrete_2024-087_circulation_rue_du_moulin.pdf", "pdf",
    "Arrêté n° 2024-087 — Circulation rue du Moulin",
    [
        HEAD + """
## ARRÊTÉ MUNICIPAL N° 2024-087
réglementant temporairement la circulation rue du Moulin
Le Maire de Saint-Aubin-sur-Loire,
Vu le Code général des collectivités territoriales, articles L. 2212-1 et suivants ;
Vu le Code de la route ;
Vu la demande du Syndicat intercommunal d’alimentation en eau potable (SIAEP) Val de Loire en date du 26 août 2024 ;
Considérant que le remplacement de la canalisation d’eau potable de la rue du Moulin nécessite l’ouverture d’une tranchée sur toute la largeur de la chaussée ;
## ARRÊTE
Article 1 : Du lundi 16 septembre 2024 au vendredi 11 octobre 2024, la circulation est interdite rue du Moulin, entre le carrefour de la route de Tours et le pont de la Cisse, sauf pour les véhicules de chantier et de secours.
Article 2 : La circulation est déviée par le chemin des Prés et la route de Tours, dans les deux sens. Les transports scolaires desservent l’arrêt provisoire « Chemin des Prés ».
""",
        """Article 3 : Le stationnement est interdit sur l’ensemble de la section concernée pendant la durée des travaux.
Article 4 : Les riverains pourront accéder à leur domicile à pied ; l’accès des véhicules sera rétabli chaque soir à partir de 18 h lorsque la tranchée sera recouverte de plaques.
Article 5 : La signalisation sera mise en place par l’entreprise Loire Canalisations pour le compte du SIAEP Val de Loire.
Article 6 : Le directeur général des services et le commandant de la brigade de gendarmerie sont chargés de l’exécution du présent arrêté.
Fait à Saint-Aubin-sur-Loire, le 2 septembre 2024.
> Le Maire, Hélène Marchand
Recours possible devant le tribunal administratif d’Orléans dans les deux mois suivant l’affichage.
""",
    ],
    kind="arrêté", date="2024-09-02",
)

add(
    "arrete_2024-095_stationnement_place_de_l_eglise.png", "png",
    "Arrêté n° 2024-095 — Stationnement place de l'Église",
    [
        """RÉPUBLIQUE FRANÇAISE
# COMMUNE DE SAINT-AUBIN-SUR-LOIRE
## ARRÊTÉ PERMANENT N° 2024-095
réglementant le stationnement place de l'Église
Le Maire de Saint-Aubin-sur-Loire,
Vu le Code général des collectivités territoriales, articles L. 2213-1 à L. 2213-3 ;
Vu le Code de la route, article R. 417-3 relatif au stationnement à durée limitée ;
Considérant la tenue du marché hebdomadaire le mercredi matin et la nécessité de favoriser la rotation des véhicules à proximité des commerces du centre-bourg ;
## ARRÊTE
Article 1 : Chaque mercredi, de 6 h à 14 h, le stationnement de tout véhicule est interdit place de l'Église, afin de permettre l'installation des commerçants non sédentaires. Les véhicules en infraction seront enlevés.
Article 2 : Les autres jours, le stationnement place de l'Église est limité à 1 h 30 entre 9 h et 19 h (zone bleue), sauf les dimanches et jours fériés. L'usage du disque européen de stationnement est obligatoire.
Article 3 : Deux emplacements réservés aux personnes à mobilité réduite sont maintenus devant le porche de l'église.
Article 4 : Le présent arrêté abroge l'arrêté n° 2019-033 du 4 avril 2019.
Fait à Saint-Aubin-sur-Loire, le 10 septembre 2024.
> Le Maire, Hélène Marchand
""",
    ],
    kind="arrêté", date="2024-09-10", style={"seed": 95, "angle": -0.9},
)

add(
    "arrete_2024-130_marche_de_noel_circulation.jpg", "jpg",
    "Arrêté n° 2024-130 — Circulation pendant le marché de Noël",
    [
        """RÉPUBLIQUE FRANÇAISE
# COMMUNE DE SAINT-AUBIN-SUR-LOIRE
## ARRÊTÉ TEMPORAIRE N° 2024-130
Objet : circulation et stationnement à l’occasion du marché de Noël 2024
Le Maire de Saint-Aubin-sur-Loire,
Vu le Code général des collectivités territoriales, articles L. 2212-2 et L. 2213-1 ;
Vu le Code de la route ;
Considérant que l’organisation du marché de Noël par le Comité des fêtes, les 14 et 15 décembre 2024, impose de réserver l’espace public aux exposants et aux visiteurs ;
## ARRÊTE
Article 1 : Du vendredi 13 décembre 2024 à 14 h au lundi 16 décembre 2024 à 8 h, la circulation et le stationnement sont interdits place du Champ de Foire et rue Nationale, entre la rue de la Poste et la place du Champ de Foire.
Article 2 : Les véhicules des exposants pourront accéder au site pour le déchargement le samedi 14 décembre de 7 h à 9 h 30, puis devront rejoindre le parking du stade.
Article 3 : Le parking de la salle des fêtes et le parking du stade sont mis gratuitement à la disposition des visiteurs.
Article 4 : La signalisation sera installée par les services techniques municipaux.
Fait à Saint-Aubin-sur-Loire, le 25 novembre 2024.
> Le Maire, Hélène Marchand
""",
    ],
    kind="arrêté", date="2024-11-25", style={"seed": 130, "angle": 1.1},
)

# ---------------------------------------------------------------------------------------
# Salle des fêtes: règlement 2024 (ODT), tarifs 2023 (TXT), commission de sécurité (scan)
# ---------------------------------------------------------------------------------------
add(
    "reglement_interieur_salle_des_fetes.odt", "odt",
    "Règlement intérieur de la salle des fêtes Jean-Moulin",
    [
        """# Règlement intérieur de la salle des fêtes Jean-Moulin
Adopté par délibération du conseil municipal n° 2024-044 du 23 mai 2024, applicable au 1er juin 2024.
## Article 1 — Objet
Le présent règlement fixe les conditions dans lesquelles la commune de Saint-Aubin-sur-Loire met la salle des fêtes Jean-Moulin, 2 allée des Platanes, à la disposition des particuliers, des associations et des entreprises. Toute location vaut acceptation pleine et entière du présent règlement.
## Article 2 — Description des locaux
La grande salle offre une surface de 320 m². Sa capacité est de 250 personnes debout et de 180 personnes assises avec tables. Elle comprend une scène de 40 m², un bar, des vestiaires et des sanitaires accessibles aux personnes à mobilité réduite.
La cuisine attenante est équipée de deux réfrigérateurs, d’un piano de cuisson, d’un four mixte et d’un lave-vaisselle professionnel. Elle est destinée au réchauffage et au service : la préparation complète de repas y est réservée aux traiteurs déclarés.
Un parking de 60 places est situé à l’arrière du bâtiment.
""",
        """## Article 3 — Réservation
Les demandes sont adressées par écrit au secrétariat de la mairie au moyen du formulaire prévu à cet effet, au plus tôt douze mois et au plus tard un mois avant la date souhaitée. La réservation ne devient ferme qu’après signature du contrat de location et versement d’un acompte de 30 % du prix.
Priorité est donnée aux manifestations organisées par la commune, puis à celles des associations ayant leur siège à Saint-Aubin-sur-Loire. Le calendrier des associations est arrêté chaque année en septembre, lors de la réunion de planification.
La sous-location ou la mise à disposition de la salle à un tiers est strictement interdite. Le signataire du contrat doit être majeur et présent pendant toute la durée de la manifestation.
## Article 4 — Annulation
En cas d’annulation plus de deux mois avant la date retenue, l’acompte est remboursé. En deçà, il reste acquis à la commune, sauf cas de force majeure dûment justifié (décès, hospitalisation, intempéries ayant entraîné une interdiction préfectorale).
La commune se réserve le droit d’annuler une location en cas de nécessité impérieuse (réquisition, élections, sinistre) ; les sommes versées sont alors intégralement restituées.
""",
        """## Article 5 — Tarifs
Tarifs fixés par la délibération n° 2024-044, applicables aux contrats signés à compter du 1er juin 2024 :
| Utilisateur | Week-end (du vendredi 18 h au lundi 9 h) | Journée en semaine |
| Habitants de Saint-Aubin-sur-Loire | 320 € | 150 € |
| Personnes extérieures à la commune | 620 € | 280 € |
| Associations albiniennes | une mise à disposition gratuite par an, puis 90 € | gratuit |
| Entreprises et organismes professionnels | 750 € | 350 € |
Options : utilisation de la cuisine 60 € ; location de vaisselle 1 € par couvert. Le chauffage est compris dans le prix.
## Article 6 — Caution
Lors de la remise des clés, le locataire remet deux chèques de caution établis à l’ordre du Trésor public : 800 € pour les éventuelles dégradations et 150 € pour le ménage. Ils sont restitués dans un délai de 15 jours suivant l’état des lieux de sortie, déduction faite, le cas échéant, du coût des réparations ou du nettoyage.
Une attestation d’assurance est exigée au même moment (voir article 10).
""",
        """## Article 7 — Horaires et remise des clés
Les clés sont remises le vendredi à 17 h, après un état des lieux d’entrée contradictoire avec l’agent communal. L’état des lieux de sortie a lieu le lundi à 9 h. Pour une location en semaine, les horaires sont fixés dans le contrat.
La diffusion de musique amplifiée doit cesser à 2 h du matin. Un limiteur de pression acoustique, réglé à 95 dB(A), équipe la sonorisation de la salle ; toute tentative de le neutraliser entraîne la retenue de la caution.
Après 22 h, les portes et les fenêtres doivent rester fermées.
## Article 8 — Respect du voisinage
La salle est située à proximité d’habitations. Le locataire veille à ce que les invités quittent les lieux dans le calme, sans klaxonner ni stationner sur les trottoirs de l’allée des Platanes. Les feux d’artifice et lâchers de lanternes sont interdits.
""",
        """## Article 9 — Sécurité
Il est interdit de fumer et de vapoter dans l’ensemble des locaux. Sont également interdits : les confettis, les bougies et flammes nues, les barbecues et appareils à gaz, les pétards et fumigènes, ainsi que toute décoration fixée au plafond ou sur les murs par clous, punaises ou adhésifs.
Les issues de secours doivent rester dégagées en permanence. L’effectif maximal autorisé par la commission de sécurité ne doit en aucun cas être dépassé.
## Article 10 — Assurance
Le locataire doit justifier d’une assurance responsabilité civile couvrant la manifestation. La commune décline toute responsabilité en cas de vol d’objets ou de matériel appartenant aux utilisateurs.
## Article 11 — Ménage et déchets
La salle, la cuisine et les sanitaires sont rendus balayés et lavés, le mobilier nettoyé et rangé. Les déchets sont triés et déposés dans les conteneurs extérieurs. À défaut, le forfait ménage de 150 € est retenu.
## Article 12 — Sanctions
Le non-respect du présent règlement peut entraîner la retenue totale ou partielle des cautions et le refus de toute location ultérieure.
""",
    ],
    kind="règlement", date="2024-05-23",
)

add(
    "tarifs_salles_municipales_2023.txt", "txt",
    "Tarifs de location des salles municipales 2023",
    [
        """COMMUNE DE SAINT-AUBIN-SUR-LOIRE
# TARIFS DE LOCATION DES SALLES MUNICIPALES - ANNEE 2023
(délibération n° 2022-101 du 8 décembre 2022)
## 1. Salle des fêtes Jean-Moulin
| Utilisateur | Week-end | Journée en semaine |
| Habitants de la commune | 290 € | 130 € |
| Extérieurs | 560 € | 250 € |
| Associations de la commune | gratuit (1 fois par an), puis 80 € | gratuit |
| Entreprises | 700 € | 320 € |
Cuisine : 55 €. Vaisselle : 0,90 € par couvert.
Le week-end s'entend du vendredi soir au lundi matin. Les réservations sont enregistrées au secrétariat de la mairie, dans l'ordre d'arrivée des demandes.
""",
        """## 2. Salle Colbert (salle de réunion, 40 personnes)
La salle Colbert, située au rez-de-chaussée de l'ancienne école, rue des Écoles, convient aux réunions, formations, vins d'honneur et anniversaires sans musique amplifiée.
| Utilisateur | Journée | Demi-journée |
| Habitants de la commune | 90 € | 50 € |
| Extérieurs | 160 € | 90 € |
| Associations de la commune | gratuit | gratuit |
## 3. Gymnase Pierre-de-Coubertin
Le gymnase est réservé aux associations sportives, aux écoles et aux manifestations communales. Il ne fait pas l'objet de location aux particuliers.
## 4. Matériel
Les tables (2 € l'unité) et les chaises (0,50 € l'unité) peuvent être empruntées pour une manifestation organisée sur la commune. Le transport est à la charge de l'emprunteur.
""",
    ],
    kind="tarifs", date="2022-12-08",
)

add(
    "proces_verbal_commission_securite_salle_des_fetes.pdf", "scan-pdf",
    "Procès-verbal de la commission communale de sécurité — salle des fêtes",
    [
        """# COMMISSION COMMUNALE DE SÉCURITÉ ET D'ACCESSIBILITÉ
## PROCÈS-VERBAL DE VISITE PÉRIODIQUE
Établissement : salle des fêtes Jean-Moulin, 2 allée des Platanes, 37999 Saint-Aubin-sur-Loire
Exploitant : commune de Saint-Aubin-sur-Loire, représentée par Mme Hélène Marchand, maire
Date de la visite : mercredi 3 avril 2024, 14 h 30
Classement : établissement recevant du public de type L (salle à usage de réunions, de spectacles ou à usages multiples), 3e catégorie.
Effectif maximal admissible : 250 personnes au titre du public, auquel s'ajoute le personnel.
Membres présents : le capitaine Frédéric Aubert, préventionniste du service départemental d'incendie et de secours (SDIS 37), président de séance ; M. Karim Benali, adjoint au maire chargé des travaux ; l'adjudant-chef Paul Vidal, commandant de la brigade de gendarmerie ; M. Stéphane Roux, responsable des services techniques.
## Constatations
La visite a porté sur l'ensemble des locaux. Les registres de sécurité ont été présentés. Les installations électriques ont été vérifiées le 12 février 2024 par un organisme agréé, sans observation. Le système de sécurité incendie (alarme de type 4) fonctionne. Quatre blocs autonomes d'éclairage de sécurité (BAES) de la grande salle ne s'allument pas lors de l'essai. La dernière vérification des extincteurs date du 9 janvier 2023.
""",
        """## Prescriptions
1. Remplacer les quatre blocs d'éclairage de sécurité défectueux dans un délai de six mois.
2. Faire procéder sans délai à la vérification annuelle des extincteurs par une entreprise certifiée et consigner l'intervention au registre de sécurité.
3. Maintenir en permanence dégagée l'issue de secours située côté cuisine, encombrée lors de la visite par du mobilier stocké.
4. Afficher à l'entrée de la salle l'effectif maximal autorisé.
## Avis de la commission
Après délibération, la commission émet un AVIS FAVORABLE à la poursuite de l'exploitation de l'établissement, sous réserve de la réalisation des prescriptions ci-dessus.
La prochaine visite périodique interviendra dans un délai de trois ans, soit au cours du premier semestre 2027.
Fait à Saint-Aubin-sur-Loire, le 3 avril 2024.
> Le président de la commission, capitaine Frédéric Aubert
Copie : exploitant ; services techniques ; SDIS 37.
""",
    ],
    kind="procès-verbal", date="2024-04-03", style={"seed": 7, "angle": -0.5, "font": "mono"},
)

# ---------------------------------------------------------------------------------------
# Cimetière: règlement (scanned, 4 pages) and the 2022 tariffs (scanned TIFF)
# ---------------------------------------------------------------------------------------
add(
    "reglement_cimetiere_communal.pdf", "scan-pdf",
    "Règlement du cimetière communal",
    [
        """# COMMUNE DE SAINT-AUBIN-SUR-LOIRE
## RÈGLEMENT DU CIMETIÈRE COMMUNAL
Arrêté municipal n° 2023-150 du 18 décembre 2023
### TITRE I — DISPOSITIONS GÉNÉRALES
Article 1 — Droit à l'inhumation. La sépulture dans le cimetière communal est due : aux personnes décédées sur le territoire de la commune, quel que soit leur domicile ; aux personnes domiciliées à Saint-Aubin-sur-Loire, quel que soit le lieu de leur décès ; aux personnes ayant droit à une sépulture de famille dans le cimetière ; aux Français établis hors de France inscrits sur la liste électorale de la commune.
Article 2 — Horaires d'ouverture. Le cimetière est ouvert au public tous les jours : du 1er avril au 31 octobre, de 8 h à 19 h ; du 1er novembre au 31 mars, de 8 h 30 à 17 h 30. Les portes sont fermées à clé en dehors de ces horaires.
Article 3 — Accès des véhicules. La circulation des véhicules est interdite dans le cimetière, à l'exception des véhicules funéraires, des véhicules des entreprises de marbrerie dûment autorisées et des véhicules des services municipaux. Les personnes à mobilité réduite peuvent obtenir en mairie une autorisation d'accès.
Article 4 — Comportement. Les visiteurs doivent se comporter avec la décence et le respect dus aux morts. Les animaux, même tenus en laisse, ne sont pas admis, à l'exception des chiens d'assistance.
""",
        """### TITRE II — CONCESSIONS
Article 5 — Types de concessions. Les terrains peuvent être concédés pour y fonder une sépulture individuelle, collective ou familiale. Les concessions sont accordées pour une durée de 15 ans, 30 ans ou 50 ans. Aucune concession perpétuelle n'est plus délivrée depuis la délibération du 3 juillet 1998.
Article 6 — Attribution. L'emplacement est désigné par le maire selon le plan du cimetière ; le concessionnaire ne peut choisir ni l'emplacement ni l'orientation de la sépulture. Une concession ne peut faire l'objet d'aucune vente ni d'aucune transaction entre particuliers.
Article 7 — Renouvellement. Les concessions à durée déterminée sont renouvelables au tarif en vigueur au moment du renouvellement. Le concessionnaire ou ses ayants droit disposent d'un délai de deux ans à compter de la date d'échéance pour procéder au renouvellement. Passé ce délai, le terrain fait retour à la commune, qui peut le reprendre après exhumation des restes, déposés à l'ossuaire.
Article 8 — Reprise des concessions abandonnées. Lorsqu'une concession a cessé d'être entretenue, le maire peut engager la procédure de reprise prévue par le Code général des collectivités territoriales. L'état d'abandon est constaté par deux procès-verbaux dressés à trois ans d'intervalle.
""",
        """### TITRE III — TRAVAUX
Article 9 — Déclaration préalable. Toute intervention sur une sépulture (pose de monument, gravure, ouverture de caveau) est déclarée en mairie au moins 48 heures à l'avance, par le concessionnaire ou l'entreprise qu'il a mandatée.
Article 10 — Périodes interdites. Aucun travail ne peut être entrepris les samedis, dimanches et jours fériés, ni pendant la période de la Toussaint, du 25 octobre au 2 novembre inclus, sauf pour les inhumations.
Article 11 — Dimensions. Les monuments posés sur une concession individuelle ne peuvent excéder 1 m de largeur et 2 m de longueur. La hauteur des stèles est limitée à 1,20 m au-dessus du sol.
Article 12 — Plantations. Les plantations d'arbres et d'arbustes en pleine terre sont interdites. Seules les fleurs en pot ou en jardinière sont admises, à condition de ne pas empiéter sur les allées.
Article 13 — Propreté du chantier. Les gravats et déchets sont évacués par l'entreprise le jour même. Les sépultures voisines sont protégées pendant toute la durée des travaux.
""",
        """### TITRE IV — ESPACE CINÉRAIRE
Article 14 — Columbarium et cavurnes. Les cases du columbarium et les cavurnes sont concédées pour une durée de 15 ans renouvelable. Chaque case peut recevoir jusqu'à quatre urnes.
Article 15 — Jardin du souvenir. La dispersion des cendres au jardin du souvenir est gratuite. Elle est subordonnée à une déclaration préalable en mairie et s'effectue en présence d'un agent communal. L'identité du défunt peut être inscrite, à la demande de la famille, sur la stèle commune.
### ANNEXE — TARIFS APPLICABLES AU 1er JANVIER 2024
(délibération n° 2023-087 du 14 décembre 2023)
| Prestation | Tarif |
| Concession de terrain 15 ans (2 m²) | 180 € |
| Concession de terrain 30 ans (2 m²) | 420 € |
| Concession de terrain 50 ans (2 m²) | 890 € |
| Case de columbarium 15 ans | 350 € |
| Cavurne 15 ans | 250 € |
| Plaque nominative, stèle du jardin du souvenir | 50 € |
Fait à Saint-Aubin-sur-Loire, le 18 décembre 2023.
> Le Maire, Hélène Marchand
""",
    ],
    kind="règlement", date="2023-12-18", style={"seed": 150, "angle": -0.6},
)

add(
    "deliberation_2022-094_tarifs_cimetiere.tiff", "tiff",
    "Délibération n° 2022-094 — Tarifs du cimetière 2023",
    [
        """# COMMUNE DE SAINT-AUBIN-SUR-LOIRE
## EXTRAIT DU REGISTRE DES DÉLIBÉRATIONS
Séance du 8 décembre 2022 - Délibération n° 2022-094
Objet : tarifs des concessions funéraires au 1er janvier 2023
Le conseil municipal, sur le rapport de M. Philippe Garnier, adjoint aux finances, après en avoir délibéré à l'unanimité, fixe comme suit les tarifs des concessions du cimetière communal, applicables à compter du 1er janvier 2023 :
| Concession | Tarif 2023 |
| Terrain, 15 ans | 160 € |
| Terrain, 30 ans | 380 € |
| Terrain, 50 ans | 800 € |
| Case de columbarium, 15 ans | 320 € |
| Cavurne, 15 ans | 230 € |
Les recettes sont affectées pour deux tiers au budget communal et pour un tiers au centre communal d'action sociale.
Fait et délibéré en séance, les jour, mois et an susdits.
> Le Maire, Hélène Marchand
""",
    ],
    kind="délibération", date="2022-12-08", style={"seed": 94, "angle": 0.4, "font": "mono"},
)

# ---------------------------------------------------------------------------------------
# Conseil municipal: comptes rendus (DOCX 2024, PDF 2023) and the 2024 budget (PDF)
# ---------------------------------------------------------------------------------------
add(
    "compte_rendu_conseil_municipal_2024-06-27.docx", "docx",
    "Compte rendu du conseil municipal du 27 juin 2024",
    [
        """# COMMUNE DE SAINT-AUBIN-SUR-LOIRE
## Compte rendu de la séance du conseil municipal du jeudi 27 juin 2024
La séance est ouverte à 20 h 30 sous la présidence de Mme Hélène Marchand, maire.
Présents : Mme Hélène Marchand, M. Philippe Garnier, Mme Sophie Lebrun, M. Karim Benali, Mme Monique Perrot, M. Julien Roussel, Mme Agnès Fontaine, M. Thierry Vasseur, Mme Nadia Ferreira, M. Gérard Poulain, Mme Claire Dumont, M. Antoine Lefèvre, Mme Isabelle Caron, M. Olivier Masson, Mme Laure Gautier, M. Bruno Chevalier, Mme Céline Aubry, M. Denis Royer, M. Marc Giraud, Mme Anne Lemoine.
Absents excusés ayant donné pouvoir : Mme Françoise Colin (pouvoir à Mme Claire Dumont), M. Yves Morin (pouvoir à M. Philippe Garnier).
Absente : Mme Élodie Barbier.
Secrétaire de séance : Mme Agnès Fontaine.
## Ordre du jour
- 1. Approbation du procès-verbal de la séance du 23 mai 2024
- 2. Compte rendu des décisions prises par le maire par délégation
- 3. Subventions aux associations pour l'année 2024
- 4. Budget principal : décision modificative n° 1
- 5. Création d'un poste d'adjoint technique territorial
- 6. Redevance d'occupation du domaine public pour les terrasses
- 7. Rapport annuel sur le prix et la qualité du service de l'eau potable
- 8. Questions diverses
""",
        """## 1. Approbation du procès-verbal de la séance du 23 mai 2024
Le procès-verbal, transmis avec la convocation, n'appelle aucune observation. Il est approuvé à l'unanimité.
## 2. Décisions prises par le maire par délégation
Conformément à l'article L. 2122-23 du Code général des collectivités territoriales, Mme le maire rend compte des décisions prises depuis la dernière séance :
- acquisition d'une balayeuse de voirie compacte auprès de la société Nordivert pour un montant de 38 400 € HT, en remplacement du matériel acquis en 2009 ;
- signature d'un contrat de maintenance des chaudières des bâtiments communaux avec l'entreprise Thermi'Loire, pour un montant annuel de 4 250 € HT, d'une durée de trois ans ;
- renonciation à l'exercice du droit de préemption urbain sur six déclarations d'intention d'aliéner ;
- attribution du marché de fourniture de repas pour le centre de loisirs à la cuisine centrale du Véron.
Le conseil municipal prend acte de ces décisions.
""",
        """## 3. Subventions aux associations pour l'année 2024
Mme Monique Perrot, adjointe à la vie associative, présente les propositions de la commission, établies à partir des dossiers de demande et des bilans remis par les associations.
| Association | Subvention 2024 |
| Football Club Albinien | 4 200 € |
| Comité des fêtes | 3 500 € |
| Harmonie municipale | 2 800 € |
| Judo Club Albinien | 1 500 € |
| Club des aînés « Les Bords de Loire » | 900 € |
| Association des parents d'élèves des Tilleuls | 750 € |
| Les Amis de la bibliothèque | 600 € |
| Restos du cœur, antenne de Saint-Aubin | 500 € |
| Total | 14 750 € |
Mme Perrot, présidente de l'Harmonie municipale, quitte la salle et ne prend pas part au vote.
Le conseil municipal, à l'unanimité des votants, attribue les subventions ci-dessus. Les crédits sont inscrits à l'article 6574 du budget principal.
""",
        """## 4. Budget principal : décision modificative n° 1
M. Philippe Garnier, adjoint aux finances, expose que l'expertise de la charpente de l'école maternelle des Tilleuls, réalisée en avril, a révélé des infiltrations importantes. La réfection complète de la toiture doit être réalisée pendant les vacances d'été.
Il est proposé d'inscrire un crédit supplémentaire de 48 000 € en section d'investissement, opération « école maternelle », financé par une réduction équivalente de l'enveloppe du programme de voirie 2024.
La décision modificative n° 1 est adoptée par 21 voix pour et 2 abstentions.
## 5. Création d'un poste d'adjoint technique territorial
Pour faire face à l'extension des espaces verts (parc des Tilleuls, futur city stade), Mme le maire propose de créer, à compter du 1er septembre 2024, un poste d'adjoint technique territorial à temps complet, affecté au service des espaces verts.
Le conseil municipal adopte cette création par 22 voix pour et 1 voix contre. Le tableau des effectifs est modifié en conséquence.
""",
        """## 6. Redevance d'occupation du domaine public pour les terrasses
M. Karim Benali rappelle que les cafés et restaurants installant des tables sur le trottoir ou sur une place publique sont redevables d'une redevance annuelle. Pour l'année 2024, le conseil municipal, à l'unanimité, fixe cette redevance à 12 € par m² et par an, la surface prise en compte étant celle indiquée dans l'autorisation d'occupation délivrée par le maire.
Les établissements concernés devront déposer leur demande d'autorisation avant le 31 janvier de chaque année.
## 7. Rapport annuel sur le prix et la qualité du service de l'eau potable
M. Gérard Poulain, délégué de la commune au Syndicat intercommunal d'alimentation en eau potable (SIAEP) Val de Loire, présente le rapport 2023. La qualité de l'eau distribuée a été conforme dans 100 % des analyses bactériologiques. Le prix moyen de l'eau, sur la base d'une consommation de référence de 120 m³, s'établit à 4,12 € par m³ toutes taxes comprises, assainissement collectif inclus. Le rendement du réseau atteint 86 %.
Le conseil municipal prend acte du rapport.
""",
        """## 8. Questions diverses
- Sécurité routière : un radar pédagogique sera installé en septembre route de Tours, à l'entrée du bourg, à la suite des demandes des riverains.
- Fête nationale : le feu d'artifice sera tiré le samedi 13 juillet à 23 h depuis les bords de Loire, suivi du bal populaire place du Champ de Foire.
- Rentrée scolaire : les travaux de toiture de l'école maternelle seront achevés avant le 2 septembre.
- Prochaine séance du conseil municipal : jeudi 26 septembre 2024 à 20 h 30.
L'ordre du jour étant épuisé, la séance est levée à 22 h 47.
> La secrétaire de séance, Agnès Fontaine — Le maire, Hélène Marchand
""",
    ],
    kind="compte rendu", date="2024-06-27",
)

add(
    "compte_rendu_conseil_municipal_2023-12-14.pdf", "pdf",
    "Compte rendu du conseil municipal du 14 décembre 2023",
    [
        HEAD + """
## Compte rendu de la séance du conseil municipal du jeudi 14 décembre 2023
Sous la présidence de Mme Hélène Marchand, maire. Ouverture de la séance à 20 h 30.
Conseillers présents : 18. Pouvoirs : 3. Absents : 2.
Secrétaire de séance : M. Olivier Masson.
## Ordre du jour
- 1. Tarifs communaux pour l’année 2024
- 2. Subvention exceptionnelle au Comité des fêtes
- 3. Dérogations au repos dominical des commerces pour 2024
- 4. Gratification des stagiaires de l’enseignement supérieur
- 5. Rapport d’activité 2022 de la communauté de communes Loire et Coteaux
- 6. Questions diverses
""",
        """## 1. Tarifs communaux pour l’année 2024
M. Philippe Garnier présente l’actualisation annuelle des tarifs. Les tarifs du cimetière communal (concessions, columbarium, cavurnes) font l’objet de la délibération n° 2023-087, jointe au règlement du cimetière. Les droits de place du marché, les photocopies et le prêt de matériel sont reconduits sans changement.
Adopté à l’unanimité.
## 2. Subvention exceptionnelle au Comité des fêtes
Le Comité des fêtes a organisé le marché de Noël des 16 et 17 décembre 2023, dont la fréquentation s’annonce en forte hausse. Afin de couvrir la location des chalets et les animations pour les enfants, il est proposé de lui verser une subvention exceptionnelle de 1 200 €.
Mme Perrot rappelle que le bénéfice de la buvette sera reversé au Téléthon.
Adopté par 20 voix pour et 1 abstention.
""",
        """## 3. Dérogations au repos dominical des commerces pour 2024
Le Code du travail permet au maire d’autoriser l’ouverture des commerces de détail jusqu’à douze dimanches par an, après avis du conseil municipal. Après consultation des organisations professionnelles et de l’union commerciale albinienne, il est proposé de retenir cinq dimanches pour l’année 2024 : le 14 janvier, le 30 juin, le 1er décembre, le 8 décembre et le 15 décembre.
Le conseil émet un avis favorable par 17 voix pour, 2 contre et 2 abstentions.
## 4. Gratification des stagiaires
Les stagiaires de l’enseignement supérieur accueillis plus de deux mois dans les services municipaux percevront la gratification minimale prévue par le Code de l’éducation. Adopté à l’unanimité.
""",
        """## 5. Rapport d’activité 2022 de la communauté de communes
Mme le maire présente les principales actions de la communauté de communes Loire et Coteaux en 2022 : mise en service de la déchetterie rénovée des Grands Champs, extension du réseau de pistes cyclables le long de la Loire, ouverture d’une maison France Services à Montlouis-les-Prés.
Le conseil prend acte de la communication du rapport.
## 6. Questions diverses
- La cérémonie des vœux du maire à la population aura lieu le vendredi 12 janvier 2024 à 19 h à la salle des fêtes Jean-Moulin.
- Le recensement de la population se déroulera du 18 janvier au 17 février 2024 ; quatre agents recenseurs ont été recrutés.
- Les illuminations de fin d’année seront allumées jusqu’au 7 janvier.
La séance est levée à 22 h 05.
""",
    ],
    kind="compte rendu", date="2023-12-14",
)

add(
    "deliberation_2024-012_budget_primitif_2024.pdf", "pdf",
    "Délibération n° 2024-012 — Budget primitif 2024",
    [
        HEAD + """
## Extrait du registre des délibérations du conseil municipal
Séance du 29 février 2024 — Délibération n° 2024-012
Objet : Vote du budget primitif 2024 — budget principal
Le conseil municipal, légalement convoqué le 22 février 2024, s’est réuni sous la présidence de Mme Hélène Marchand, maire.
En exercice : 23 — présents : 21 — pouvoirs : 2 — votants : 23.
Vu le Code général des collectivités territoriales, et notamment ses articles L. 1612-1 et suivants et L. 2311-1 à L. 2343-2 ;
Vu l’instruction budgétaire et comptable M57 ;
Vu le débat d’orientation budgétaire tenu le 1er février 2024 ;
Vu le projet de budget primitif présenté par M. Philippe Garnier, adjoint délégué aux finances, et examiné par la commission des finances le 15 février 2024 ;
Considérant que le budget doit être voté en équilibre réel ;
""",
        """## Présentation générale
Le budget primitif 2024 s’inscrit dans un contexte d’inflation encore soutenue et de hausse des dépenses d’énergie. Il traduit les priorités de la municipalité : rénovation énergétique des bâtiments scolaires, entretien de la voirie et équipements pour la jeunesse.
| Section | Dépenses | Recettes |
| Fonctionnement | 4 812 300 € | 4 812 300 € |
| Investissement | 2 146 900 € | 2 146 900 € |
| Total du budget | 6 959 200 € | 6 959 200 € |
Les charges de personnel représentent 2 184 000 €, soit 45 % des dépenses réelles de fonctionnement. Les dépenses d’énergie sont estimées à 318 000 €, en hausse de 9 % par rapport au budget 2023.
""",
        """## Fiscalité directe locale
Conformément aux engagements de la municipalité, les taux d’imposition sont maintenus au niveau de 2023 :
| Taxe | Taux 2024 |
| Taxe foncière sur les propriétés bâties | 38,52 % |
| Taxe foncière sur les propriétés non bâties | 47,10 % |
| Taxe d’habitation sur les résidences secondaires | 14,60 % |
Le produit fiscal attendu s’élève à 2 035 000 €, la progression résultant uniquement de la revalorisation forfaitaire des bases décidée par la loi de finances (+3,9 %).
Les dotations de l’État (dotation globale de fonctionnement, dotation de solidarité rurale) sont estimées à 612 000 €.
""",
        """## Principaux investissements
| Opération | Montant |
| Rénovation énergétique de l’école maternelle des Tilleuls (isolation, menuiseries, pompe à chaleur) | 620 000 € |
| Programme annuel de voirie | 310 000 € |
| Réserves foncières (acquisition de terrains) | 120 000 € |
| City stade au parc des Tilleuls | 95 000 € |
| Vidéoprotection des bâtiments publics | 48 000 € |
| Matériel des services techniques | 62 000 € |
La rénovation de l’école maternelle bénéficie d’une subvention de l’État au titre de la dotation de soutien à l’investissement local (DSIL) à hauteur de 40 % et d’une aide du Département de 15 %.
""",
        """## Financement et endettement
Les investissements sont financés par un autofinancement de 512 000 €, les subventions attendues (468 000 €), le fonds de compensation de la TVA (186 000 €) et le recours à un emprunt de 400 000 € sur 20 ans.
Au 1er janvier 2024, l’encours de la dette s’élève à 2 930 000 €, soit 612 € par habitant, contre 780 € en moyenne pour les communes de la même strate démographique.
## Décision
Le conseil municipal, après en avoir délibéré, par 19 voix pour et 4 voix contre, adopte le budget primitif 2024 du budget principal, voté par chapitre, tel que présenté.
> Le maire, Hélène Marchand
Transmis en préfecture le 4 mars 2024.
""",
    ],
    kind="délibération", date="2024-02-29",
)

# ---------------------------------------------------------------------------------------
# Associations: convention with the judo club (ODT), minibus loan (DOCX)
# ---------------------------------------------------------------------------------------
add(
    "convention_objectifs_judo_club_albinien.odt", "odt",
    "Convention d'objectifs et de moyens — Judo Club Albinien",
    [
        """# Convention d'objectifs et de moyens
Entre la commune de Saint-Aubin-sur-Loire, représentée par son maire, Mme Hélène Marchand, dûment habilitée par délibération du conseil municipal n° 2024-061 du 27 juin 2024, ci-après dénommée « la commune »,
et l'association « Judo Club Albinien », association régie par la loi du 1er juillet 1901, déclarée en préfecture d'Indre-et-Loire, dont le siège est situé au gymnase Pierre-de-Coubertin, rue du Stade, représentée par son président, M. Éric Tessier, ci-après dénommée « l'association »,
il est convenu ce qui suit.
## Préambule
L'association, affiliée à la Fédération française de judo, compte 142 licenciés, dont 104 jeunes de moins de 18 ans. Elle propose l'enseignement du judo, du jujitsu et du taïso à partir de 4 ans. Par son action éducative et son ouverture à tous les publics, elle participe à la politique sportive de la commune, qui souhaite soutenir son développement dans la durée.
""",
        """## Article 1 — Objet
La présente convention définit les engagements réciproques de la commune et de l'association, ainsi que les moyens mis à la disposition de cette dernière pour la réalisation de son projet associatif.
## Article 2 — Mise à disposition d'équipements
La commune met gracieusement à la disposition de l'association le dojo du gymnase Pierre-de-Coubertin, équipé de 200 m² de tatamis, selon le planning suivant :
- le mardi et le jeudi, de 17 h 30 à 21 h ;
- le samedi, de 9 h à 12 h.
Ces créneaux s'appliquent en période scolaire. Pendant les vacances, l'association peut organiser des stages après accord écrit de la commune, sollicité au moins un mois à l'avance.
## Article 3 — Obligations de l'association
L'association s'engage à faire encadrer les séances par des enseignants titulaires d'un diplôme d'État ou d'un certificat de qualification professionnelle, à respecter le règlement intérieur du gymnase, à laisser les locaux propres et à signaler sans délai toute dégradation.
""",
        """## Article 4 — Soutien financier
La commune attribue à l'association une subvention annuelle de fonctionnement d'un montant de 1 500 €, sous réserve du vote des crédits au budget. Elle est versée en deux fois : 60 % au mois d'avril et le solde au mois d'octobre, après examen des documents mentionnés à l'article 5.
Une aide exceptionnelle peut être accordée pour l'organisation d'une compétition départementale ou régionale sur le territoire communal, sur présentation d'un budget prévisionnel.
## Article 5 — Documents à fournir
L'association transmet à la commune, avant le 31 mars de chaque année : le bilan financier et le compte de résultat de l'exercice écoulé, certifiés par le président et le trésorier ; le rapport d'activité ; le budget prévisionnel de la saison suivante ; la liste des membres du bureau.
## Article 6 — Communication
L'association fait figurer le logo de la commune sur ses supports de communication et mentionne le soutien municipal lors de ses manifestations publiques.
""",
        """## Article 7 — Durée
La présente convention est conclue pour une durée de trois ans à compter du 1er septembre 2024. Elle pourra être renouvelée par avenant exprès ; aucune reconduction tacite n'est possible.
## Article 8 — Résiliation
Chacune des parties peut résilier la convention par lettre recommandée avec accusé de réception, moyennant un préavis de trois mois. En cas de manquement grave de l'association à ses obligations, la commune peut résilier la convention sans préavis, après mise en demeure restée sans effet pendant quinze jours.
## Article 9 — Litiges
Les litiges relatifs à l'exécution de la présente convention relèvent de la compétence du tribunal administratif d'Orléans, après recherche d'une solution amiable.
Fait à Saint-Aubin-sur-Loire, en deux exemplaires originaux, le 5 juillet 2024.
> Pour la commune, le maire, Hélène Marchand — Pour l'association, le président, Éric Tessier
""",
    ],
    kind="convention", date="2024-07-05",
)

add(
    "convention_pret_minibus_associations.docx", "docx",
    "Convention de prêt du minibus communal aux associations",
    [
        """# COMMUNE DE SAINT-AUBIN-SUR-LOIRE
## Convention de prêt du minibus communal aux associations
Entre la commune de Saint-Aubin-sur-Loire, représentée par Mme Hélène Marchand, maire,
et l'association désignée dans le bon de réservation annexé, représentée par son président ou sa présidente,
il est convenu ce qui suit.
## Article 1 - Objet
La commune est propriétaire d'un minibus Renault Trafic de 9 places (conducteur compris), immatriculé GH-482-TR, financé en partie par les annonceurs locaux. Elle le prête aux associations ayant leur siège sur la commune pour le transport de leurs membres lors de compétitions, de sorties ou de manifestations culturelles.
Le véhicule ne peut être utilisé à des fins commerciales ni pour le transport de marchandises.
""",
        """## Article 2 - Réservation
La demande est faite auprès de l'accueil de la mairie au moins 10 jours avant la date d'utilisation. En cas de demandes concurrentes, la priorité est donnée aux déplacements de jeunes licenciés, puis à l'ordre d'arrivée des demandes.
## Article 3 - Conducteurs
Le véhicule ne peut être conduit que par un conducteur désigné nominativement par l'association, âgé d'au moins 21 ans et titulaire du permis B depuis plus de 3 ans. La copie de son permis de conduire est jointe à la demande.
## Article 4 - Participation financière
L'association verse une participation aux frais d'entretien de 0,25 € par kilomètre parcouru, relevé au compteur au départ et au retour. Le carburant est à sa charge : le véhicule est restitué avec le plein fait.
""",
        """## Article 5 - Remise et restitution
Les clés et les papiers du véhicule sont retirés à l'accueil de la mairie la veille du départ et restitués le premier jour ouvré suivant le retour, avant 10 h. Le véhicule est rendu propre, intérieur et extérieur.
## Article 6 - Assurance et responsabilité
Le minibus est assuré par la commune. La franchise de 500 € restant due en cas de sinistre responsable est facturée à l'association. Les contraventions relevées pendant la période de prêt sont à la charge du conducteur désigné.
## Article 7 - Durée
La présente convention est valable pour l'année civile et renouvelable par tacite reconduction.
> Le maire, Hélène Marchand - Le président de l'association
""",
    ],
    kind="convention", date="2024-01-15",
)

# ---------------------------------------------------------------------------------------
# Urbanisme: PLU (PDF, 6 pages), zone 1AU (Markdown), enquête publique (scanned JPEG)
# ---------------------------------------------------------------------------------------
add(
    "plu_reglement_ecrit_extrait_zones_UA_UB.pdf", "pdf",
    "Plan local d'urbanisme — règlement écrit, extrait (zones UA et UB)",
    [
        """# PLAN LOCAL D’URBANISME DE SAINT-AUBIN-SUR-LOIRE
## Pièce n° 4 — Règlement écrit (extrait)
PLU approuvé par délibération du 12 octobre 2017 ; modification n° 1 approuvée le 25 juin 2020 ; modification n° 2 approuvée le 9 novembre 2023.
## Titre I — Dispositions générales
Le présent règlement s’applique à l’ensemble du territoire de la commune. Il divise le territoire en zones urbaines (U), en zones à urbaniser (AU), en zones agricoles (A) et en zones naturelles et forestières (N).
Les zones urbaines comprennent : la zone UA, correspondant au centre ancien ; la zone UB, correspondant aux extensions récentes à dominante pavillonnaire ; la zone UE, réservée aux équipements publics ; la zone UX, destinée aux activités économiques.
Les dispositions du plan de prévention du risque d’inondation (PPRI) du val de Tours – val de Luynes s’imposent au présent règlement dans les secteurs qu’il délimite.
Le présent extrait reproduit les règles des zones UA et UB. Les autres zones figurent dans le règlement complet consultable en mairie.
""",
        """## Titre II — Zone UA
### Caractère de la zone
La zone UA recouvre le centre-bourg historique, constitué d’un bâti ancien dense, implanté à l’alignement des rues, en tuffeau et ardoise. Elle accueille de l’habitat, des commerces, des services et des équipements.
### Article UA 1 — Occupations et utilisations du sol interdites
Sont interdits : les constructions à usage industriel ; les entrepôts, sauf s’ils sont liés à un commerce existant ; les terrains de camping et de stationnement de caravanes ; les dépôts de véhicules et de matériaux ; les éoliennes de plus de 12 m.
### Article UA 2 — Implantation par rapport aux voies
Les constructions principales sont implantées à l’alignement des voies et emprises publiques existantes ou projetées. Un retrait peut être admis lorsque la continuité du front bâti est assurée par un mur de clôture en pierre.
""",
        """### Article UA 3 — Hauteur des constructions
La hauteur maximale des constructions est fixée à 12 m au faîtage, soit un rez-de-chaussée, deux étages et des combles (R+2+combles). Les annexes isolées ne peuvent dépasser 4 m au faîtage.
### Article UA 4 — Aspect extérieur
Les toitures des constructions principales sont à deux pans, d’une pente comprise entre 40° et 45°, couvertes en ardoise naturelle. Les façades sont enduites à la chaux ou réalisées en pierre de tuffeau apparente. Les menuiseries en PVC blanc sont interdites sur les façades visibles depuis l’espace public.
Les clôtures sur rue sont constituées de murs en pierre d’une hauteur maximale de 1,80 m, ou d’un muret surmonté d’une grille.
Les panneaux solaires sont admis s’ils sont intégrés à la toiture et non visibles depuis les monuments protégés.
""",
        """## Titre III — Zone UB
### Caractère de la zone
La zone UB correspond aux quartiers d’habitat pavillonnaire réalisés depuis les années 1960, sous forme de lotissements ou de constructions individuelles. Le règlement y vise une densification mesurée, respectueuse du cadre de vie.
### Article UB 1 — Implantation par rapport aux voies
Les constructions principales sont implantées avec un recul minimal de 5 m par rapport à l’alignement des voies publiques.
### Article UB 2 — Implantation par rapport aux limites séparatives
Les constructions sont implantées soit en limite séparative, soit à une distance au moins égale à 3 m.
### Article UB 3 — Emprise au sol
L’emprise au sol des constructions ne peut excéder 40 % de la superficie du terrain.
""",
        """### Article UB 4 — Hauteur des constructions
La hauteur maximale des constructions est fixée à 9 m au faîtage et à 6 m à l’égout du toit.
Les abris de jardin ont une surface de plancher maximale de 20 m² et une hauteur maximale de 3 m.
### Article UB 5 — Clôtures
En limite séparative, la hauteur des clôtures ne peut excéder 1,60 m. En façade sur rue, elle est limitée à 1,20 m ; la clôture est alors constituée d’un muret de 0,60 m au plus, surmonté d’une grille ou d’un grillage, doublé ou non d’une haie.
Les haies sont composées d’essences locales variées ; les haies monospécifiques de thuyas ou de lauriers-palmes sont proscrites.
""",
        """### Article UB 6 — Stationnement
Il est exigé 2 places de stationnement par logement, aménagées sur la parcelle. Pour les constructions de logements locatifs financés avec un prêt aidé de l’État, il n’est exigé qu’une place par logement.
### Article UB 7 — Espaces libres et plantations
30 % au moins de la superficie du terrain sont traités en espaces verts de pleine terre. Les arbres existants de haute tige sont conservés ou remplacés.
### Article UB 8 — Piscines
Les piscines sont implantées à 3 m au moins des limites séparatives. Les locaux techniques sont enterrés ou intégrés à une annexe.
Fin de l’extrait.
""",
    ],
    kind="urbanisme", date="2023-11-09",
)

add(
    "plu_orientations_zone_1AU_les_grands_champs.md", "md",
    "PLU — zone 1AU « Les Grands Champs »",
    [
        """# Zone 1AU « Les Grands Champs » — règles et orientations

Extrait du plan local d'urbanisme de Saint-Aubin-sur-Loire (modification n° 2 du 9 novembre 2023).

## Caractère de la zone

La zone 1AU des Grands Champs, d'une superficie de 6,4 hectares, est destinée à accueillir un nouveau quartier d'habitat mixte au nord-est du bourg, entre la route de Tours et la déchetterie. Son urbanisation se fera par une opération d'aménagement d'ensemble, en deux tranches.

## Programme

- Densité minimale : 25 logements par hectare.
- 20 % au moins de logements locatifs sociaux.
- Une liaison douce (piétons et cycles) vers l'école des Tilleuls.

## Règles principales

| Règle | Valeur |
|---|---|
| Hauteur maximale | 10 m au faîtage |
| Emprise au sol | 50 % du terrain |
| Recul par rapport aux voies | 4 m |
| Stationnement | 1,5 place par logement |
| Espaces verts de pleine terre | 25 % du terrain |

## Gestion de l'eau

Les eaux pluviales sont gérées à la parcelle ou dans des noues paysagères. Les toitures végétalisées sont encouragées.
""",
    ],
    kind="urbanisme", date="2023-11-09",
)

add(
    "avis_enquete_publique_modification_plu.jpg", "jpg",
    "Avis d'enquête publique — modification n° 3 du PLU",
    [
        """# AVIS D'ENQUÊTE PUBLIQUE
## Commune de Saint-Aubin-sur-Loire — Modification n° 3 du plan local d'urbanisme
Par arrêté n° 2025-031 du 7 avril 2025, le maire de Saint-Aubin-sur-Loire a ordonné l'ouverture d'une enquête publique portant sur le projet de modification n° 3 du plan local d'urbanisme.
Le projet a pour objet : l'ouverture à l'urbanisation de la seconde tranche de la zone 1AU des Grands Champs ; l'ajustement des règles relatives aux clôtures en zone UB ; la création d'un emplacement réservé pour l'élargissement du chemin des Prés.
L'enquête se déroulera du lundi 5 mai 2025 au vendredi 6 juin 2025 inclus, soit 33 jours consécutifs.
M. Bernard Lefort, ingénieur territorial retraité, a été désigné commissaire enquêteur par le président du tribunal administratif d'Orléans.
Le dossier pourra être consulté en mairie aux heures d'ouverture habituelles et sur le site internet de la commune. Chacun pourra consigner ses observations sur le registre papier ou les adresser par courriel à enquete-plu@saint-aubin-sur-loire.fr.
Le commissaire enquêteur recevra le public en mairie : le lundi 5 mai 2025 de 9 h à 12 h ; le samedi 17 mai 2025 de 9 h à 12 h ; le vendredi 6 juin 2025 de 14 h à 17 h.
Son rapport et ses conclusions seront tenus à la disposition du public pendant un an.
> Le Maire, Hélène Marchand
""",
    ],
    kind="avis", date="2025-04-07", style={"seed": 31, "angle": -1.2},
)

# ---------------------------------------------------------------------------------------
# Bibliothèque (HTML), horaires de la mairie (DOCX summer note, TXT usual hours)
# ---------------------------------------------------------------------------------------
add(
    "reglement_bibliotheque_municipale.html", "html",
    "Règlement de la bibliothèque municipale Colette",
    [
        """# Bibliothèque municipale Colette — règlement intérieur
Le présent règlement, adopté par le conseil municipal le 23 mai 2024, fixe les droits et les devoirs des usagers de la bibliothèque municipale Colette, 5 place de l’Église.
## Accès et horaires
L’accès à la bibliothèque et la consultation sur place sont libres et gratuits. La bibliothèque accueille le public :
- le mardi de 16 h à 18 h 30 ;
- le mercredi de 10 h à 12 h et de 14 h à 18 h ;
- le vendredi de 16 h à 19 h ;
- le samedi de 10 h à 16 h sans interruption.
Elle est fermée les jours fériés et pendant les deux premières semaines d’août.
## Inscription
L’inscription est gratuite pour les habitants de Saint-Aubin-sur-Loire et des communes de la communauté de communes Loire et Coteaux. Pour les autres usagers, une cotisation de 12 € par an est demandée. L’inscription se fait sur présentation d’une pièce d’identité et d’un justificatif de domicile ; les mineurs de moins de 14 ans doivent présenter une autorisation parentale.
## Prêt des documents
Chaque abonné peut emprunter jusqu’à 6 documents dont 2 DVD pour une durée de 3 semaines. Le prêt peut être prolongé une fois, sur place, par téléphone ou sur le portail en ligne, sauf si le document est réservé par un autre lecteur. Les nouveautés sont prêtées pour 2 semaines, sans prolongation.
## Retards, pertes et détériorations
En cas de retard, un premier rappel est adressé au bout de 8 jours, un second au bout de 21 jours. Le droit de prêt est suspendu pour une durée égale à celle du retard. Tout document perdu ou détérioré est remplacé à l’identique ou remboursé au prix d’achat.
## Services numériques
Un accès Wi-Fi gratuit et deux postes informatiques sont à la disposition des usagers. L’impression est facturée 0,20 € la page.
## Comportement
Les usagers sont tenus de respecter le calme. Il est interdit de manger dans les espaces de lecture. Les enfants de moins de 8 ans doivent être accompagnés d’un adulte.
""",
    ],
    kind="règlement", date="2024-05-23", style={"entities": True},
)

add(
    "note_de_service_horaires_ete_2024.docx", "docx",
    "Note de service n° 2024-07 — Horaires d'été 2024",
    [
        """# MAIRIE DE SAINT-AUBIN-SUR-LOIRE
## Note de service n° 2024-07
Émetteur : Laurent Dubreuil, directeur général des services
Destinataires : ensemble des agents ; élus ; affichage public
Date : 17 juin 2024
Objet : horaires d’ouverture au public pendant l’été 2024
Du lundi 8 juillet au vendredi 23 août 2024 inclus, l’accueil de la mairie sera ouvert au public du lundi au vendredi, de 8 h 30 à 12 h 30. L’accueil sera fermé au public l’après-midi ; les agents assureront pendant ces heures le traitement des dossiers et la réponse aux courriels.
Les permanences du samedi matin sont suspendues pendant cette période. Pour les déclarations de décès, un élu d’astreinte peut être joint par l’intermédiaire de la gendarmerie.
L’agence postale communale sera fermée du lundi 5 août au samedi 17 août 2024. Les colis et lettres recommandées en instance pourront être retirés au bureau de poste de Montlouis-les-Prés.
""",
        """## Services sur rendez-vous
Le service urbanisme ne reçoit que sur rendez-vous pendant l’été, le mardi et le jeudi matin. Les demandes de cartes d’identité et de passeports sont maintenues sur rendez-vous, à raison de douze créneaux par semaine.
## Congés des agents
Chaque responsable de service veille à ce que la continuité du service soit assurée par au moins deux agents à l’accueil. Le planning des congés validé est affiché en salle de pause.
## Reprise
Les horaires habituels d’ouverture reprendront le lundi 26 août 2024.
> Le directeur général des services, Laurent Dubreuil
""",
    ],
    kind="note de service", date="2024-06-17",
)

add(
    "horaires_et_contacts_mairie.txt", "txt",
    "Horaires et contacts de la mairie",
    [
        """MAIRIE DE SAINT-AUBIN-SUR-LOIRE
1 place de la Mairie - 37999 Saint-Aubin-sur-Loire
# HORAIRES D'OUVERTURE AU PUBLIC
(en vigueur depuis le 2 janvier 2024, hors période estivale)
| Jour | Matin | Après-midi |
| Lundi | 8 h 30 - 12 h | 13 h 30 - 17 h 30 |
| Mardi | 8 h 30 - 12 h | 13 h 30 - 17 h 30 |
| Mercredi | 8 h 30 - 12 h | fermé |
| Jeudi | 8 h 30 - 12 h | 13 h 30 - 19 h |
| Vendredi | 8 h 30 - 12 h | 13 h 30 - 17 h |
| Samedi | 9 h - 12 h (état civil uniquement) | fermé |
La nocturne du jeudi permet aux personnes qui travaillent d'effectuer leurs démarches en fin de journée.
Les demandes de cartes nationales d'identité et de passeports sont reçues uniquement sur rendez-vous.
""",
        """# CONTACTS
- Accueil de la mairie : 02 47 00 12 34 - mairie@saint-aubin-sur-loire.fr
- Services techniques : 02 47 00 12 40 - du lundi au vendredi, de 8 h à 12 h
- Service scolaire et périscolaire : 02 47 00 12 45
- Centre communal d'action sociale (CCAS) : permanence le jeudi de 9 h à 12 h, sans rendez-vous
- Police municipale : 06 80 00 21 37
- Bibliothèque municipale Colette : 02 47 00 12 60
## Urgences en dehors des heures d'ouverture
Un élu d'astreinte peut être joint le week-end et les jours fériés au 06 70 00 45 45, pour les seules urgences relevant de la commune (voirie dangereuse, bâtiment communal, décès).
Pour les urgences vitales, composez le 15 (SAMU), le 17 (police-gendarmerie), le 18 (pompiers) ou le 112.
""",
    ],
    kind="information", date="2024-01-02",
)

# ---------------------------------------------------------------------------------------
# Périscolaire (PDF), règlement du restaurant scolaire (ODT), conseil d'école (TXT)
# ---------------------------------------------------------------------------------------
add(
    "tarifs_accueil_periscolaire_2024-2025.pdf", "pdf",
    "Accueil périscolaire et de loisirs — tarifs 2024-2025",
    [
        HEAD + """
## Accueil périscolaire et accueil de loisirs du mercredi — année scolaire 2024-2025
Délibération n° 2024-047 du 23 mai 2024
## Horaires de fonctionnement
L’accueil périscolaire est assuré dans les locaux de l’école élémentaire des Tilleuls, par une équipe d’animateurs diplômés :
- le matin, de 7 h 15 à 8 h 35 ;
- le soir, de 16 h 30 à 18 h 45, avec un goûter fourni par la commune et un temps d’aide aux leçons.
L’accueil de loisirs du mercredi fonctionne de 7 h 30 à 18 h 30, à la journée ou à la demi-journée avec ou sans repas.
## Inscription
L’inscription se fait sur le portail famille, après constitution du dossier unique (fiche sanitaire, attestation d’assurance, justificatif du quotient familial). Les réservations sont modifiables jusqu’à la veille à 10 h.
""",
        """## Tarifs au quotient familial, applicables au 1er septembre 2024
| Prestation | Tranche A (QF ≤ 500) | Tranche B (501 à 900) | Tranche C (901 à 1 300) | Tranche D (QF > 1 300) |
| Accueil du matin | 1,10 € | 1,50 € | 1,95 € | 2,40 € |
| Accueil du soir, goûter compris | 1,60 € | 2,20 € | 2,75 € | 3,20 € |
| Mercredi, journée avec repas | 8,00 € | 11,00 € | 14,50 € | 18,00 € |
| Mercredi, demi-journée avec repas | 5,00 € | 7,00 € | 9,00 € | 11,00 € |
Les enfants domiciliés hors de la commune se voient appliquer le tarif de la tranche D majoré de 20 %.
Une réduction de 10 % est accordée à partir du troisième enfant inscrit.
""",
        """## Retards et pénalités
Les familles sont tenues de respecter l’heure de fermeture de 18 h 45. Tout départ après cette heure donne lieu à une pénalité de 10 € par quart d’heure entamé. Au-delà de trois retards dans l’année scolaire, une exclusion temporaire de l’accueil du soir peut être prononcée.
## Paiement
Une facture mensuelle est adressée aux familles sur le portail famille. Le règlement peut se faire par prélèvement automatique, par carte bancaire en ligne, par chèque ou en espèces auprès de la régie. Les chèques emploi service universel (CESU) sont acceptés pour l’accueil des enfants de moins de 6 ans.
## Aides
Les familles allocataires peuvent bénéficier des aides aux temps libres de la caisse d’allocations familiales, déduites directement de la facture pour l’accueil de loisirs du mercredi.
""",
    ],
    kind="tarifs", date="2024-05-23",
)

add(
    "reglement_restaurant_scolaire.odt", "odt",
    "Règlement du restaurant scolaire des Tilleuls",
    [
        """# Règlement du restaurant scolaire des Tilleuls
Applicable à compter de la rentrée de septembre 2024.
## Préambule
La restauration scolaire est un service public facultatif proposé par la commune aux élèves des écoles maternelle et élémentaire des Tilleuls. Au-delà de sa fonction nutritionnelle, le temps du repas est un moment de détente, de découverte du goût et d’apprentissage de la vie en collectivité.
## Fonctionnement
Les repas sont préparés sur place par la cuisine municipale. Deux services sont organisés : à 11 h 45 pour les élèves de maternelle et de CP, à 12 h 45 pour les élèves du CE1 au CM2. Les enfants sont encadrés par les agents municipaux et les animateurs du service périscolaire.
""",
        """## Inscription et réservation
L’inscription annuelle se fait au moyen du dossier unique, à déposer sur le portail famille avant le 15 juillet pour la rentrée suivante.
Les repas sont réservés ou annulés sur le portail famille au plus tard le jeudi à minuit pour la semaine suivante. Au-delà de ce délai, toute modification est impossible et le repas réservé est facturé, sauf absence pour maladie justifiée par un certificat médical.
Un enfant non inscrit peut exceptionnellement être accueilli en cas d’imprévu familial ; le repas est alors facturé avec la majoration prévue par la délibération fixant les tarifs.
## Facturation
Les repas sont facturés mensuellement, au tarif correspondant au quotient familial de la famille.
""",
        """## Santé et alimentation
Les menus sont élaborés par une diététicienne et validés par une commission des menus réunissant parents, enseignants et agents. Ils sont affichés à l’entrée de l’école et publiés sur le portail famille.
Conformément à la loi EGalim, les repas comportent au moins 50 % de produits durables et de qualité, dont au moins 20 % de produits issus de l’agriculture biologique. Un menu végétarien est proposé une fois par semaine.
Les enfants souffrant d’allergies ou d’intolérances alimentaires ne sont accueillis qu’après la mise en place d’un projet d’accueil individualisé (PAI) avec le médecin scolaire. Selon le cas, la famille fournit un panier-repas.
Aucun médicament ne peut être administré par le personnel en dehors d’un PAI.
""",
        """## Discipline
Les enfants doivent respecter le personnel, leurs camarades, la nourriture et le matériel. En cas de comportement inadapté, l’échelle des sanctions est la suivante :
- rappel à l’ordre oral par l’agent ;
- avertissement écrit adressé aux parents ;
- après trois avertissements écrits, exclusion temporaire du restaurant scolaire, d’une durée d’une semaine au plus, prononcée par le maire après rencontre avec la famille ;
- en cas de faits graves ou répétés, exclusion définitive.
Les dégradations volontaires sont facturées aux parents.
> Le maire, Hélène Marchand
""",
    ],
    kind="règlement", date="2024-06-27",
)

add(
    "compte_rendu_conseil_ecole_elementaire_2024-11-07.txt", "txt",
    "Compte rendu du conseil d'école de l'école élémentaire des Tilleuls — 7 novembre 2024",
    [
        """ECOLE ELEMENTAIRE DES TILLEULS - SAINT-AUBIN-SUR-LOIRE
# COMPTE RENDU DU CONSEIL D'ECOLE DU JEUDI 7 NOVEMBRE 2024
Présents : Mme Valérie Girard, directrice ; les huit enseignants de l'école ; Mme Sophie Lebrun, adjointe aux affaires scolaires ; Mme Karine Petit, déléguée départementale de l'Éducation nationale ; huit représentants élus des parents d'élèves.
Excusé : M. l'inspecteur de l'Éducation nationale de la circonscription de Tours-Est.
## 1. Résultats des élections des représentants de parents
Les élections du 11 octobre ont connu une participation de 47 %. La liste de l'association des parents d'élèves a obtenu les huit sièges.
## 2. Effectifs et structure
L'école compte 187 élèves répartis en 8 classes, soit une moyenne de 23,4 élèves par classe. La classe de CM1-CM2 compte 26 élèves. Les prévisions pour la rentrée 2025 font état d'une légère baisse (181 élèves).
""",
        """## 3. Projets pédagogiques et sorties
- Classe de neige des deux classes de CM2 au Lioran (Cantal), du lundi 3 au samedi 8 février 2025. Le coût du séjour est de 480 € par élève ; la participation des familles est fixée à 150 €, le solde étant financé par la commune (220 €) et par l'association des parents d'élèves.
- Spectacle de fin d'année le vendredi 27 juin 2025 à la salle des fêtes.
- Cycle natation pour les CP et CE1 à la piscine intercommunale, de janvier à mars.
## 4. Sécurité
Un exercice du plan particulier de mise en sûreté (PPMS) « intrusion » a été réalisé le mardi 15 octobre 2024 ; les élèves ont été mis à l'abri en moins de trois minutes. Un exercice d'évacuation incendie a eu lieu le 19 septembre.
""",
        """## 5. Travaux et équipements
Les enseignants demandent l'installation de stores occultants dans les classes exposées au sud et la réfection du sol du préau. Mme Lebrun indique que les stores seront posés pendant les vacances d'hiver ; le préau sera étudié au budget 2025.
## 6. Questions des parents
- Sécurité aux abords de l'école : les parents demandent un passage piéton supplémentaire rue des Écoles. La mairie étudiera la demande avec les services du Département.
- Cantine : les parents souhaitent davantage de fruits de saison ; la question sera portée à la prochaine commission des menus.
Prochain conseil d'école : jeudi 13 mars 2025 à 18 h.
Secrétaire de séance : M. Hugo Lambert, enseignant de CE2.
""",
    ],
    kind="compte rendu", date="2024-11-07",
)

# ---------------------------------------------------------------------------------------
# Déchets: calendrier 2025 (scanned PDF) and the 2024 reminder (Markdown)
# ---------------------------------------------------------------------------------------
add(
    "calendrier_collecte_dechets_2025.pdf", "scan-pdf",
    "Calendrier de collecte des déchets 2025",
    [
        """# COLLECTE DES DÉCHETS 2025
## Saint-Aubin-sur-Loire — communauté de communes Loire et Coteaux
### Ordures ménagères (bac à couvercle gris)
La commune est divisée en deux secteurs de collecte, séparés par la route de Tours (RD 952) :
- secteur Nord (au nord de la route de Tours, y compris le lotissement des Grands Champs) : collecte le mardi matin ;
- secteur Sud (bourg, bords de Loire, rue du Moulin) : collecte le vendredi matin.
Les bacs doivent être sortis la veille au soir, à partir de 19 h, poignée tournée vers la rue, et rentrés le jour même après la collecte. Les sacs déposés à côté des bacs ne sont pas ramassés.
### Rappel
Un bac non conforme, trop lourd ou contenant des déchets interdits (gravats, déchets verts, verre) ne sera pas collecté : un autocollant d'information sera apposé sur le couvercle.
Renseignements : service déchets de la communauté de communes, 02 47 00 98 70.
""",
        """### Emballages et papiers (bac à couvercle jaune)
Collecte un jeudi sur deux, les jeudis des semaines paires, sur l'ensemble de la commune. Tous les emballages se trient : bouteilles et flacons en plastique, pots et barquettes, films, boîtes de conserve, cartonnettes, papiers. Déposez-les en vrac, non imbriqués et non lavés.
### Verre
Le verre se dépose dans les 12 colonnes d'apport volontaire réparties sur la commune (place du Champ de Foire, parking du stade, rue des Écoles...), de 8 h à 20 h.
### Jours fériés
- La collecte des emballages du jeudi 1er mai 2025 est reportée au samedi 3 mai 2025.
- La collecte des emballages du jeudi 25 décembre 2025 est reportée au samedi 27 décembre 2025.
Les autres jours fériés, les collectes sont maintenues.
### Encombrants
Les objets volumineux (mobilier, literie, gros électroménager) sont collectés à domicile deux fois par an, uniquement sur rendez-vous pris auprès du service déchets, dans la limite de 2 m³ par foyer.
""",
        """### Déchetterie des Grands Champs
Route de Tours, accès avec la carte d'accès délivrée gratuitement sur justificatif de domicile.
| Jour | Horaires |
| Lundi | 14 h - 18 h |
| Mercredi | 9 h - 12 h et 14 h - 18 h |
| Vendredi | 14 h - 18 h |
| Samedi | 9 h - 18 h |
Fermée le mardi, le jeudi, le dimanche et les jours fériés.
Les apports des particuliers sont limités à 3 m³ par semaine. Les professionnels sont accueillis le mercredi matin, moyennant une facturation au volume.
### Déchets verts
Les tontes, tailles de haies et feuilles sont acceptées à la déchetterie. Le compostage à domicile est encouragé : un composteur de 400 litres est proposé par la communauté de communes au prix de 15 €.
""",
    ],
    kind="information", date="2024-12-02", style={"seed": 2025, "angle": 0.9},
)

add(
    "collecte_dechets_2024_rappel_consignes.md", "md",
    "Collecte des déchets 2024 — rappel des consignes",
    [
        """# Collecte des déchets en 2024 : rappel des consignes

*Article paru dans le bulletin municipal de janvier 2024.*

## Les jours de collecte ne changent pas

Les ordures ménagères sont collectées le **mardi** au nord de la route de Tours et le **vendredi** au sud. Les emballages (bac jaune) sont ramassés le jeudi des semaines **impaires** en 2024.

## Déchetterie des Grands Champs : horaires 2024

| Jour | Horaires |
|---|---|
| Lundi | 14 h - 17 h 30 |
| Mercredi | 9 h - 12 h et 14 h - 17 h 30 |
| Samedi | 9 h - 17 h |

La déchetterie est fermée les autres jours. Pensez à présenter votre carte d'accès.

## Brûlage interdit

Rappel : le brûlage des déchets verts est interdit toute l'année. Les branchages peuvent être broyés lors des opérations de broyage gratuit organisées par la commune au printemps et à l'automne.
""",
    ],
    kind="information", date="2024-01-05",
)

# ---------------------------------------------------------------------------------------
# Marché de Noël: programme 2024 (HTML), bilan 2023 (Markdown)
# ---------------------------------------------------------------------------------------
add(
    "marche_de_noel_2024_programme.html", "html",
    "Marché de Noël 2024 — programme",
    [
        """# Marché de Noël de Saint-Aubin-sur-Loire — 14 et 15 décembre 2024
Organisé par le Comité des fêtes avec le soutien de la commune, le marché de Noël s’installe place du Champ de Foire le samedi 14 décembre de 10 h à 20 h et le dimanche 15 décembre de 10 h à 18 h.
## Les exposants
Une soixantaine d’exposants — 60 chalets et stands — proposeront artisanat d’art, produits du terroir, vins de Loire, décorations et idées de cadeaux. Le vin chaud et les crêpes sont servis par les bénévoles du Comité des fêtes.
## Le programme
- Samedi 14 décembre à 16 h : arrivée du Père Noël en calèche, depuis les bords de Loire, puis séance photos gratuite devant le sapin.
- Samedi à 18 h 30 : illumination du grand sapin et spectacle de feu.
- Dimanche 15 décembre à 15 h : concert de la chorale « Les Voix de Saint-Aubin » en l’église Saint-Aubin.
- Pendant les deux jours : patinoire synthétique pour les enfants, manège ancien, atelier de fabrication de décorations à la bibliothèque.
## Devenir exposant
Les inscriptions des exposants sont ouvertes jusqu’au 15 novembre 2024. Le stand de 3 m est proposé à 25 € pour les deux jours ; l’électricité est fournie. Les dossiers sont à retirer à la mairie ou auprès du Comité des fêtes.
## Accès
Parkings gratuits du stade et de la salle des fêtes. Navette gratuite depuis la gare le samedi après-midi.
""",
    ],
    kind="information", date="2024-10-15", style={"entities": True},
)

add(
    "marche_de_noel_2023_bilan.md", "md",
    "Marché de Noël 2023 — bilan",
    [
        """# Marché de Noël 2023 : un bilan très positif

Le Comité des fêtes a présenté le bilan de l'édition 2023 lors de son assemblée générale du 26 janvier 2024.

- **48 exposants** ont participé, dont 30 artisans de la commune et des environs.
- Environ **3 200 visiteurs** se sont succédé les 16 et 17 décembre 2023 place du Champ de Foire, un record.
- Le stand était proposé à **20 €** pour le week-end.
- La buvette et la vente de crêpes ont permis de reverser **1 850 €** au Téléthon.

Le président du Comité des fêtes, M. Jean-Pierre Hamon, remercie les 35 bénévoles mobilisés et la commune pour sa subvention exceptionnelle. Pour 2024, le Comité souhaite accueillir davantage d'exposants et prolonger l'événement le samedi soir avec une animation lumineuse.

> « Voir autant de familles réunies autour du sapin, c'est notre plus belle récompense. » — Jean-Pierre Hamon
""",
    ],
    kind="information", date="2024-01-26",
)

# ---------------------------------------------------------------------------------------
# Tarifs communaux 2025 (ODT), bruits de voisinage (Markdown), état civil (HTML)
# ---------------------------------------------------------------------------------------
add(
    "deliberation_2024-078_tarifs_communaux_2025.odt", "odt",
    "Délibération n° 2024-078 — Tarifs communaux 2025",
    [
        """# COMMUNE DE SAINT-AUBIN-SUR-LOIRE
## Extrait du registre des délibérations du conseil municipal
Séance du 14 novembre 2024 — Délibération n° 2024-078
Objet : tarifs des services et de l’occupation du domaine public pour l’année 2025
Le conseil municipal, convoqué le 7 novembre 2024, s’est réuni sous la présidence de Mme Hélène Marchand, maire.
En exercice : 23 — présents : 20 — pouvoirs : 3 — votants : 23.
Vu le Code général des collectivités territoriales, notamment ses articles L. 2121-29 et L. 2331-4 ;
Vu le Code général de la propriété des personnes publiques, notamment son article L. 2125-1 ;
Considérant la nécessité d’actualiser chaque année les tarifs des services communaux afin de tenir compte de l’évolution des coûts ;
M. Philippe Garnier, adjoint aux finances, propose une hausse limitée à l’inflation, arrondie, des tarifs de l’occupation du domaine public et le maintien des autres tarifs.
""",
        """## Tarifs applicables au 1er janvier 2025
| Prestation | Tarif 2025 |
| Marché hebdomadaire du mercredi : droit de place | 1,50 € le mètre linéaire |
| Marché hebdomadaire : abonnement trimestriel | 15 € le mètre linéaire |
| Terrasses des cafés et restaurants | 13 € par m² et par an |
| Cirques et fêtes foraines | 50 € par jour |
| Photocopie A4 noir et blanc | 0,20 € |
| Photocopie A4 couleur | 0,50 € |
| Location de table (particuliers) | 2 € |
| Location de chaise (particuliers) | 0,50 € |
| Location d’un barnum de 3 m × 6 m | 40 € (gratuit pour les associations de la commune) |
Le matériel est retiré et rapporté par l’emprunteur aux services techniques, rue de la Cisse, aux heures d’ouverture.
""",
        """## Interventions des services techniques
| Prestation | Tarif 2025 |
| Heure d’intervention d’un agent (travaux pour compte de tiers) | 35 € |
| Enlèvement d’un dépôt sauvage de déchets (forfait) | 150 € |
| Nettoyage de la voie publique après un chantier privé (forfait) | 120 € |
Le forfait d’enlèvement de dépôt sauvage est mis à la charge de l’auteur identifié, sans préjudice des poursuites pénales.
## Décision
Le conseil municipal, après en avoir délibéré, à l’unanimité, adopte les tarifs ci-dessus, applicables à compter du 1er janvier 2025.
> Le maire, Hélène Marchand
""",
    ],
    kind="délibération", date="2024-11-14",
)

add(
    "arrete_2023-058_bruits_de_voisinage_et_brulage.md", "md",
    "Arrêté n° 2023-058 — bruits de voisinage et brûlage des déchets verts",
    [
        """# Arrêté municipal n° 2023-058 relatif aux bruits de voisinage et au brûlage des déchets verts

Le Maire de Saint-Aubin-sur-Loire,

Vu le Code général des collectivités territoriales, articles L. 2212-1 et L. 2212-2 ;
Vu le Code de la santé publique, articles R. 1336-4 à R. 1336-11 ;
Vu l'arrêté préfectoral relatif à la lutte contre les bruits de voisinage en Indre-et-Loire ;
Vu le règlement sanitaire départemental, article 84 ;

## Arrête

**Article 1 — Travaux bruyants des particuliers.** Les travaux de bricolage ou de jardinage réalisés par des particuliers à l'aide d'outils ou d'appareils susceptibles de causer une gêne pour le voisinage en raison de leur intensité sonore, tels que tondeuses à gazon, tronçonneuses, perceuses, raboteuses ou scies mécaniques, ne peuvent être effectués que :

- les jours ouvrables, de 8 h 30 à 12 h et de 14 h 30 à 19 h 30 ;
- les samedis, de 9 h à 12 h et de 15 h à 19 h ;
- les dimanches et jours fériés, de 10 h à 12 h.

**Article 2 — Animaux.** Les propriétaires d'animaux, en particulier de chiens, sont tenus de prendre toutes mesures pour éviter une gêne pour le voisinage, y compris par l'usage de dispositifs dissuadant les animaux de faire du bruit de manière répétée.

**Article 3 — Brûlage.** Le brûlage à l'air libre des déchets verts (herbe, feuilles, branches, résidus de taille) est interdit en tout temps sur le territoire de la commune. Ces déchets doivent être déposés à la déchetterie ou compostés. Toute infraction est passible d'une amende pouvant aller jusqu'à 450 €.

**Article 4.** Le présent arrêté sera affiché en mairie et publié sur le site internet de la commune.

Fait à Saint-Aubin-sur-Loire, le 12 mai 2023.

Le Maire, Hélène Marchand
""",
    ],
    kind="arrêté", date="2023-05-12",
)

add(
    "demarches_etat_civil_et_citoyennete.html", "html",
    "Démarches d'état civil et de citoyenneté",
    [
        """# Vos démarches d’état civil et de citoyenneté
## Carte nationale d’identité et passeport
La mairie de Saint-Aubin-sur-Loire est équipée d’un dispositif de recueil des demandes de titres d’identité. Les demandes sont reçues uniquement sur rendez-vous, pris à l’accueil ou par téléphone. Remplissez au préalable une pré-demande en ligne sur le site de l’Agence nationale des titres sécurisés et munissez-vous de votre numéro de pré-demande, d’une photo d’identité de moins de six mois et d’un justificatif de domicile. Le délai de fabrication est d’environ trois semaines ; le retrait se fait en mairie, en personne.
## Mariage
Le dossier de mariage doit être déposé en mairie au moins 2 mois avant la date envisagée pour la célébration. Les futurs époux se présentent ensemble, avec les pièces d’identité et la liste des témoins (deux au minimum, quatre au maximum). La publication des bans est affichée dix jours avant la cérémonie.
## Pacte civil de solidarité (PACS)
L’enregistrement d’un PACS se fait sur rendez-vous auprès de l’officier d’état civil de la mairie de résidence commune des partenaires.
## Recensement citoyen
Tout jeune de nationalité française doit se faire recenser en mairie entre la date de ses 16 ans et la fin du troisième mois qui suit. L’attestation remise est nécessaire pour s’inscrire aux examens et au permis de conduire avant 25 ans.
## Inscription sur les listes électorales
L’inscription est possible toute l’année, en ligne ou en mairie, au plus tard le sixième vendredi précédant un scrutin.
## Actes d’état civil
Les copies et extraits d’actes de naissance, de mariage ou de décès établis à Saint-Aubin-sur-Loire sont délivrés gratuitement, sur demande écrite ou en ligne.
""",
    ],
    kind="information", date="2024-03-01",
)

# ---------------------------------------------------------------------------------------
# Bulletin municipal (PDF, 8 pages), plan communal de sauvegarde (PDF), CCAS (PDF)
# ---------------------------------------------------------------------------------------
add(
    "bulletin_municipal_printemps_2024.pdf", "pdf",
    "Saint-Aubin Infos — bulletin municipal, printemps 2024",
    [
        """# Saint-Aubin Infos — n° 58, printemps 2024
## Le mot de la maire
Chères Albiniennes, chers Albiniens,
Le printemps revient et, avec lui, les chantiers qui préparent l’avenir de notre commune. Le budget 2024, voté en février sans augmentation des taux d’imposition, donne la priorité à nos écoles : l’école maternelle des Tilleuls sera rénovée de fond en comble pour offrir à nos enfants des classes mieux isolées, plus confortables l’été comme l’hiver.
Nous poursuivons aussi la modernisation de l’éclairage public, qui permettra de réduire notre facture d’énergie tout en préservant la biodiversité nocturne. Et pour nos jeunes, la nouvelle aire de jeux du parc des Tilleuls vient d’ouvrir, en attendant le city stade promis pour l’automne.
Je remercie les bénévoles de nos associations, qui font vivre Saint-Aubin tout au long de l’année : vous trouverez dans ces pages le riche agenda des semaines à venir.
Bonne lecture à toutes et à tous.
> Hélène Marchand, maire de Saint-Aubin-sur-Loire
""",
        """## Travaux : un éclairage public plus sobre
Depuis janvier, les 420 points lumineux de la commune sont progressivement remplacés par des lanternes à LED. Le chantier, confié au syndicat intercommunal d’énergie, doit s’achever en juin. Il permettra une économie d’électricité estimée à 62 %.
En complément, l’éclairage public est éteint chaque nuit de 23 h à 5 h 30 dans toutes les rues, depuis le 1er mars 2024, à l’exception de la route de Tours et du carrefour de la gare. Cette mesure, testée pendant six mois dans le quartier des Grands Champs, a été plébiscitée par les habitants interrogés.
## École maternelle : les travaux cet été
Les travaux de rénovation énergétique de l’école maternelle des Tilleuls (isolation des murs et des combles, remplacement des fenêtres, installation d’une pompe à chaleur) se dérouleront de juillet à octobre. Pendant la durée du chantier, deux classes seront accueillies dans des modules provisoires installés dans la cour de l’école élémentaire.
""",
        """## Une nouvelle aire de jeux au parc des Tilleuls
Inaugurée le samedi 13 avril 2024 en présence de nombreuses familles, la nouvelle aire de jeux du parc des Tilleuls accueille les enfants de 2 à 12 ans. Elle compte six jeux : une structure à grimper avec toboggan, deux balançoires dont une adaptée aux enfants en situation de handicap, un tourniquet, un jeu à ressort et une tyrolienne.
Le sol souple amortissant et la clôture périphérique garantissent la sécurité des plus petits. Des bancs et une table de pique-nique ont été installés à l’ombre des tilleuls.
Le coût de l’opération s’élève à 78 000 € TTC, financés à 30 % par la caisse d’allocations familiales.
Prochaine étape : le city stade, terrain multisport clos destiné aux adolescents, sera construit à proximité à l’automne 2024.
""",
        """## État civil
Naissances : Léna Moreau (4 janvier) ; Gabriel Nguyen (19 janvier) ; Inès Boucher (2 février) ; Noé Lemaire (21 février) ; Jade Carpentier (8 mars).
Mariages : Camille Petit et Romain Leclerc (17 février) ; Sarah Benoît et Mehdi Haddad (23 mars).
Décès : Marcel Guérin, 91 ans (12 janvier) ; Simone Renard, 87 ans (30 janvier) ; Jean Faure, 78 ans (5 mars).
Les familles qui ne souhaitent pas voir figurer ces informations dans le bulletin peuvent le signaler à l’accueil de la mairie.
## Nouveaux habitants
Vous vous êtes installés à Saint-Aubin-sur-Loire depuis un an ? La municipalité vous invite à un moment de convivialité le samedi 7 septembre 2024 à 11 h, salle du conseil, pour vous présenter la commune, ses services et ses associations. Inscription à l’accueil de la mairie.
""",
        """## Agenda des associations
- Dimanche 26 mai : vide-grenier de l’association des parents d’élèves, rue Nationale et place du Champ de Foire, de 7 h à 18 h. Emplacement : 3 € le mètre, sur réservation.
- Vendredi 21 juin : fête de la musique dans le bourg, scène ouverte place de l’Église à partir de 19 h.
- Samedi 7 septembre : forum des associations au gymnase Pierre-de-Coubertin, de 10 h à 17 h.
- Dimanche 8 septembre : « Les Foulées albiniennes », courses à pied de 5 et 10 km au départ du stade, organisées par le Football Club Albinien. Départ du 10 km à 9 h 30.
- Samedi 12 octobre : repas des aînés offert par le CCAS, salle des fêtes Jean-Moulin.
## Harmonie municipale
L’Harmonie recrute des musiciens de tous niveaux, en particulier des clarinettistes et des percussionnistes. Répétitions le vendredi à 20 h 30 à l’école de musique.
""",
        """## Portrait : Au Fournil de Loire
Depuis janvier 2024, Mathieu et Chloé Renaud ont repris la boulangerie-pâtisserie de la place de l’Église, tenue pendant trente ans par la famille Berthier. Lui est boulanger, formé chez les Compagnons du devoir ; elle, pâtissière, a travaillé plusieurs années à Tours.
Leur spécialité : le pain au levain naturel, cuit au feu de bois le vendredi, et la fouace tourangelle. Les farines viennent d’un moulin de Touraine, à moins de 40 km.
« Nous voulions une boulangerie de village, où l’on prend le temps de discuter », confie Chloé. Le pari semble réussi : la file d’attente du dimanche matin s’allonge jusque sur le trottoir.
Au Fournil de Loire est ouvert du jeudi au mardi, de 6 h 30 à 19 h 30 (13 h le dimanche). Fermeture hebdomadaire le mercredi.
""",
        """## Environnement
### Broyage gratuit des branches
Les services techniques organisent deux opérations de broyage gratuit des branchages : les samedis 13 avril et 19 octobre 2024, de 9 h à 12 h, aux ateliers municipaux, rue de la Cisse. Repartez avec votre broyat pour pailler vos massifs.
### Compostage
La communauté de communes propose des composteurs de 400 litres au prix de 15 €. Réservation auprès du service déchets.
### Frelon asiatique
Un nid de frelons asiatiques sur votre propriété ? Ne tentez pas de le détruire vous-même. Signalez-le en mairie : la commune prend en charge 50 % du coût de la destruction, réalisée par une entreprise agréée, dans la limite de 80 € par intervention.
""",
        """## Infos pratiques
### Recensement citoyen
Dès leurs 16 ans, et au plus tard dans les trois mois qui suivent leur anniversaire, les jeunes Français doivent se faire recenser en mairie, munis de leur carte d’identité et du livret de famille.
### Numéros utiles
- Médecin de garde (soirs, week-ends et jours fériés) : 116 117
- Pharmacie de garde : 3237
- Mairie : 02 47 00 12 34
- Gendarmerie de Montlouis-les-Prés : 17 ou 02 47 00 88 10
- Centre antipoison d’Angers : 02 41 48 21 21
### Prochain bulletin
Le bulletin d’été paraîtra début juillet. Les associations peuvent transmettre leurs articles avant le 10 juin à communication@saint-aubin-sur-loire.fr.
""",
    ],
    kind="bulletin", date="2024-04-15",
)

add(
    "plan_communal_de_sauvegarde_extrait.pdf", "pdf",
    "Plan communal de sauvegarde — extrait",
    [
        HEAD + """
## PLAN COMMUNAL DE SAUVEGARDE — document d’information (extrait)
Version approuvée par arrêté du maire n° 2023-112 du 20 septembre 2023.
## Objet
Le plan communal de sauvegarde (PCS) organise la réponse de la commune en cas d’événement majeur : il prévoit l’alerte et l’information de la population, l’appui aux services de secours, l’hébergement et le ravitaillement des personnes sinistrées.
## Les risques identifiés à Saint-Aubin-sur-Loire
- Inondation par débordement de la Loire et de la Cisse : une partie du bourg et les bords de Loire sont situés en zone inondable, couverte par le plan de prévention du risque d’inondation (PPRI).
- Tempêtes et phénomènes météorologiques violents.
- Transport de matières dangereuses sur la route de Tours (RD 952) et sur la voie ferrée Tours–Orléans.
- Canicule et grand froid, pour les personnes vulnérables.
""",
        """## L’alerte de la population
La commune dispose d’une sirène installée sur le toit de la mairie, reliée au système d’alerte et d’information des populations (SAIP). Elle fait l’objet d’un essai chaque premier mercredi du mois à midi : il s’agit alors d’un simple test, sans danger.
En cas d’alerte réelle, le signal national d’alerte se compose d’un son montant et descendant de trois fois 1 minute 41 secondes, séparées par un silence de 5 secondes. La fin de l’alerte est annoncée par un son continu de 30 secondes.
En complément, les habitants peuvent s’inscrire gratuitement au service d’alerte par SMS et message vocal de la commune, à l’accueil de la mairie ou sur le site internet. Les véhicules des services techniques équipés de haut-parleurs peuvent parcourir les quartiers concernés.
## Les bons réflexes
Dès l’alerte : mettez-vous à l’abri, écoutez France Bleu Touraine, ne téléphonez pas sauf urgence, n’allez pas chercher vos enfants à l’école : ils y sont pris en charge.
""",
        """## Hébergement et rassemblement
En cas d’évacuation, la population est accueillie dans les centres d’hébergement suivants :
| Lieu | Capacité |
| Gymnase Pierre-de-Coubertin, rue du Stade | 200 places |
| Salle des fêtes Jean-Moulin, allée des Platanes | 150 places |
| Salle Colbert, rue des Écoles | 30 places (personnes à mobilité réduite) |
Le point de rassemblement des habitants évacués des bords de Loire est fixé place du Champ de Foire, hors zone inondable, d’où des navettes les conduisent vers les centres d’hébergement.
## Personnes vulnérables
Les personnes âgées, isolées ou en situation de handicap peuvent s’inscrire sur le registre tenu par le centre communal d’action sociale, afin d’être contactées en priorité en cas de crise.
""",
        """## La cellule de crise communale
En cas d’événement majeur, le maire, directeur des opérations de sauvegarde, active la cellule de crise au poste de commandement communal, installé en mairie, salle du conseil. Elle réunit les adjoints, le directeur général des services, le responsable des services techniques et le CCAS.
## Votre kit d’urgence
Préparez à l’avance : une radio à piles, une lampe de poche, des piles de rechange, de l’eau potable, des médicaments indispensables, une copie de vos papiers importants, des vêtements chauds et une couverture.
Document d’information à conserver.
""",
    ],
    kind="information", date="2023-09-20",
)

add(
    "rapport_activite_ccas_2023.pdf", "pdf",
    "Centre communal d'action sociale — rapport d'activité 2023",
    [
        HEAD + """
## Centre communal d’action sociale (CCAS) — Rapport d’activité 2023
## Le mot du vice-président
Le CCAS de Saint-Aubin-sur-Loire est un établissement public administratif présidé par la maire. Son conseil d’administration compte douze membres : six élus du conseil municipal et six représentants d’associations œuvrant dans le domaine social, familial, des personnes âgées et des personnes handicapées.
En 2023, l’inflation a pesé lourdement sur les budgets des ménages les plus modestes. Le CCAS a adapté ses aides et renforcé ses partenariats pour répondre à des demandes en forte hausse. Je remercie les agents et les bénévoles pour leur engagement de chaque jour.
> Philippe Garnier, vice-président du CCAS
""",
        """## Les aides facultatives
Le CCAS accorde, après évaluation de la situation par la travailleuse sociale, des aides ponctuelles aux foyers en difficulté :
- secours d’urgence alimentaire, sous forme de bons d’achat ;
- aide au paiement des factures d’énergie (électricité, gaz, bois), plafonnée à 150 € par foyer et par an ;
- aide aux frais de cantine pour les familles dont la situation a brusquement changé ;
- prêts sans intérêt, remboursables sur vingt-quatre mois au plus.
En 2023, la commission permanente a examiné 64 dossiers d’aide à l’énergie, contre 41 en 2022, pour un montant total de 8 420 €.
""",
        """## Nos aînés
À l’occasion des fêtes de fin d’année, le CCAS a distribué un colis gourmand à 215 personnes âgées de 75 ans et plus vivant à domicile. Les résidents de l’EHPAD reçoivent un cadeau personnalisé.
Le traditionnel repas des aînés, offert aux habitants de 70 ans et plus, s’est tenu le jeudi 12 octobre 2023 à la salle des fêtes Jean-Moulin et a réuni 168 convives, animé par l’orchestre « Guinguette de Loire ».
Pendant l’épisode de canicule d’août 2023, les agents ont appelé chaque jour les 47 personnes inscrites sur le registre des personnes vulnérables.
""",
        """## Le portage de repas à domicile
Le service de portage de repas, assuré par un agent du CCAS avec un véhicule réfrigéré, s’adresse aux personnes âgées, malades ou handicapées qui ne peuvent préparer leurs repas. Les repas sont livrés six jours sur sept, le samedi pour le samedi et le dimanche.
Le prix du repas livré (entrée, plat, fromage, dessert et pain) est de 7,80 €. En 2023, 9 140 repas ont été livrés à 52 bénéficiaires.
## La téléassistance
Le CCAS facilite l’installation de la téléassistance au domicile des personnes isolées, en partenariat avec le Département ; 38 abonnements étaient actifs au 31 décembre 2023.
""",
        """## Nos partenaires
- La Banque alimentaire de Touraine approvisionne l’épicerie solidaire ; la distribution a lieu le mardi de 14 h à 16 h à la salle Colbert, rue des Écoles, pour les familles orientées par la travailleuse sociale.
- Les Restos du cœur disposent d’un local municipal mis à disposition gratuitement pour leur campagne d’hiver.
- La mission locale reçoit les jeunes de 16 à 25 ans en mairie un mercredi sur deux.
## Le budget
Le budget du CCAS s’est élevé en 2023 à 168 500 €, financé par une subvention communale de 120 000 €, la participation des bénéficiaires du portage de repas et un tiers des recettes des concessions funéraires.
""",
    ],
    kind="rapport", date="2024-03-20",
)
